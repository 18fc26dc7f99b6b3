"""Which answers the writer holds, and which held pushes it sends again (in memory)."""

from __future__ import annotations

import asyncio

import pytest

from channels_distributed.conf.hosts import HostSpec
from channels_distributed.exceptions import RedisUnavailable, ReplyError
from channels_distributed.transport.held import Held, waits

ONE = HostSpec(host="127.0.0.1", port=6379)
CLUSTER = HostSpec(host="127.0.0.1", port=7000, cluster=True)


@pytest.mark.parametrize("answer", [
    "LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script",
    "MASTERDOWN Link with MASTER is down", "OOM command not allowed",
    "ERR max number of clients reached"])
def test_answers_of_a_healthy_server_that_is_not_ready_are_held(answer: str) -> None:
    assert waits(ReplyError(answer), ONE)
    assert waits(ReplyError(answer), CLUSTER)


@pytest.mark.parametrize("answer", [
    "CLUSTERDOWN The cluster is down", "CLUSTERDOWN Hash slot not served",
    "TRYAGAIN Multiple keys request during rehashing of slot", "MOVED 3999 127.0.0.1:7001"])
def test_cluster_states_are_held_on_a_cluster_only(answer: str) -> None:
    assert waits(ReplyError(answer), CLUSTER)
    assert not waits(ReplyError(answer), ONE)  # a cluster the layer did not find: a refusal


@pytest.mark.parametrize("answer", [
    "NOPERM this user has no permissions to run the 'evalsha' command",
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR Error running script (call to f_1): @user_script:5: OOM command not allowed"])
def test_refusals_and_errors_inside_a_script_are_not_held(answer: str) -> None:
    # (Inside a script: it may have written before the error.)
    assert not waits(ReplyError(answer), CLUSTER)


def _call(loop: asyncio.AbstractEventLoop, key: str,
          count: int) -> tuple[str, int, int, list[tuple[bytes, asyncio.Future[None]]]]:
    return (key, 100, 60_000, [(f"{key}{i}".encode(), loop.create_future())
                               for i in range(count)])


def _why(error: ReplyError, key: str) -> str:
    return f"{key}: {error}"


async def test_held_pushes_are_released_in_order() -> None:
    loop = asyncio.get_running_loop()
    held = Held(retry_window=5.0)
    first, second = _call(loop, "a", 2), _call(loop, "b", 1)
    held.add(first, ReplyError("CLUSTERDOWN The cluster is down"), now=10.0)
    held.add(second, ReplyError("CLUSTERDOWN The cluster is down"), now=10.1)
    assert held
    calls, acked = held.release(now=11.0, why=_why)
    assert calls == [first, second] and acked == []
    assert not held


async def test_a_held_push_overtaken_by_a_later_one_is_failed() -> None:
    loop = asyncio.get_running_loop()
    held = Held(retry_window=5.0)
    overtaken, other = _call(loop, "a", 1), _call(loop, "b", 1)
    held.add(overtaken, ReplyError("BUSY Redis is busy"), now=10.0)
    held.add(other, ReplyError("BUSY Redis is busy"), now=10.0)
    held.went_through("a")  # a push sent after it, to the same list, went through
    held.went_through("c")  # (a list with nothing held: nothing to fail)
    calls, _ = held.release(now=10.5, why=_why)
    assert calls == [other]
    with pytest.raises(RedisUnavailable, match="out of order"):
        overtaken[3][0][1].result()


async def test_a_push_held_for_the_whole_retry_window_fails_naming_it() -> None:
    loop = asyncio.get_running_loop()
    held = Held(retry_window=5.0)
    old, young = _call(loop, "a", 1), _call(loop, "b", 1)
    held.add(old, ReplyError("CLUSTERDOWN The cluster is down"), now=10.0)
    held.add(young, ReplyError("CLUSTERDOWN The cluster is down"), now=14.0)
    held.add(old, ReplyError("CLUSTERDOWN The cluster is down"), now=14.0)  # held again
    calls, _ = held.release(now=15.0, why=_why)
    assert calls == [young]
    with pytest.raises(RedisUnavailable, match=r"a: CLUSTERDOWN .*5 s later .*retry_window"):
        old[3][0][1].result()


async def test_held_acknowledged_pushes_are_released_as_queued() -> None:
    loop = asyncio.get_running_loop()
    held = Held(retry_window=5.0)
    futures = [loop.create_future(), loop.create_future()]
    call = (["p", "l", "s1", "s2"], [100, 60_000, b"r1", b"e1", b"r2", b"e2"], futures)
    held.add_acked(call, ReplyError("LOADING Redis is loading"), now=1.0)
    futures[1].set_result(1)  # (settled meanwhile: not sent again)
    _, acked = held.release(now=2.0, why=_why)
    assert acked == [(("p", "l", 100, 60_000), [(b"r1", "s1", b"e1", futures[0])])]
