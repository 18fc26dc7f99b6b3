"""The Redis preflight's judgements, in memory: which versions each topology accepts (read from
INFO server and HELLO as the servers word them), how much clock skew deadlines tolerate (with an
injected clock), that every command of the ACL advice is probed, and the report's shape. The
checks against real servers: tests/test_preflight_redis.py."""

from __future__ import annotations

import json

import pytest

from channels_distributed.preflight import Checked, Finding, Report
from channels_distributed.protocol.keys import key_slot
from channels_distributed.transport import permissions, skew, versions
from channels_distributed.transport.refusals import LAYER_ACL, WORKER_ACL

# INFO server as each kind answers it (abridged; the fields around the version kept).
INFO_REDIS_62 = ("# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\n"
                 "redis_mode:standalone\r\nserver_time_usec:1796632413539038\r\n")
INFO_REDIS_7 = "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n"
INFO_REDIS_60 = "# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n"
INFO_VALKEY = ("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\n"
               "valkey_version:8.1.8\r\nredis_mode:standalone\r\n")


@pytest.mark.parametrize(("info", "shown"), [
    (INFO_REDIS_62, "Redis 6.2.14"), (INFO_REDIS_7, "Redis 7.0.15"),
    (INFO_REDIS_60, "Redis 6.0.16"), (INFO_VALKEY, "Valkey 8.1.8"),
])
def test_the_version_is_read_from_info_server(info: str, shown: str) -> None:
    assert str(versions.from_info(info)) == shown


def test_the_mode_is_read_too() -> None:
    """A cluster node, or a Sentinel given where a Redis server was expected."""
    assert [versions.from_info(i).mode for i in (INFO_REDIS_62, INFO_REDIS_7)] == [  # type: ignore[union-attr]
        "standalone", "cluster"]
    hello = versions.from_hello([b"server", b"redis", b"version", b"7.0.15", b"mode", b"sentinel"])
    assert hello is not None and hello.mode == "sentinel"


def test_the_version_is_read_from_hello() -> None:
    # HELLO 2 as Valkey 8 and Redis 6.2 answer it (any user may send it).
    assert str(versions.from_hello([b"server", b"valkey", b"version", b"8.1.8", b"proto", 2])) \
        == "Valkey 8.1.8"
    assert str(versions.from_hello([b"server", b"redis", b"version", b"6.2.14"])) \
        == "Redis 6.2.14"
    assert versions.from_info("# Server\r\n") is None


@pytest.mark.parametrize(("info", "cluster", "needs"), [
    (INFO_REDIS_60, False, "needs Redis 6.2 or later"),
    (INFO_REDIS_60, True, "needs Redis 6.2 or later"),
    (INFO_REDIS_62, True, "CLUSTER SHARDS, which Redis Cluster has from 7.0"),
    (INFO_REDIS_62, False, None),
    (INFO_REDIS_7, True, None),
    (INFO_VALKEY, True, None),
])
def test_each_topology_needs_its_version(info: str, cluster: bool, needs: str | None) -> None:
    version = versions.from_info(info)
    assert version is not None
    found = versions.problem(version, cluster)
    if needs is None:
        assert found is None
    else:
        assert found is not None
        problem, fix = found
        assert needs in problem and "nothing to fall back to" in problem
        assert "Valkey" in fix


def test_what_the_package_falls_back_to_on_62() -> None:
    old, new, valkey = (versions.from_info(i) for i in (INFO_REDIS_62, INFO_REDIS_7,
                                                        INFO_VALKEY))
    assert old is not None and new is not None and valkey is not None
    assert "BLPOP then LPOP in place of BLMPOP" in versions.fallbacks(old)
    assert versions.fallbacks(new) == versions.fallbacks(valkey) == ""


def _sample(offset: float, round_trip: float = 0.002, at: float = 1_800_000_000.0) -> skew.Sample:
    """What a clock ``offset`` s behind Redis measures over a link of ``round_trip`` s."""
    return skew.Sample(at, at + round_trip, at + round_trip / 2 + offset)


def test_the_limits_follow_the_window() -> None:
    assert skew.limits(5.0) == (0.5, 1.25)  # the edge's default worker_timeout
    assert skew.limits(60.0) == (0.5, 15.0)  # the layer's default expiry
    assert skew.limits(1.0) == (0.25, 0.25)  # a short window: no room for a warning


@pytest.mark.parametrize(("offset", "judged"), [
    (0.0, None), (0.4, None), (-0.4, None),
    (0.7, "warning"), (-0.7, "warning"),
    (1.3, "error"), (-30.0, "error"),
])
def test_skew_is_judged_against_the_window(offset: float, judged: str | None) -> None:
    found = skew.judge([_sample(offset)], window=5.0)
    assert (found[0] if found else None) == judged
    if found:
        assert found[1] == pytest.approx(abs(offset) - 0.001)


def test_a_slow_link_is_not_taken_for_a_skewed_clock() -> None:
    # 0.7 s measured over a 1.6 s round trip could be 0: nothing certain, nothing reported.
    assert skew.judge([_sample(0.7, round_trip=1.6)], window=5.0) is None
    # The best sample decides: the same skew, once measured over a fast link, is reported.
    found = skew.judge([_sample(0.7, round_trip=1.6), _sample(0.7)], 5.0)
    assert found is not None and found[0] == "warning"
    assert found[2].uncertainty == pytest.approx(0.001, abs=1e-6)
    assert skew.judge([], window=5.0) is None


def test_the_sign_says_which_clock_is_ahead() -> None:
    assert _sample(2.0).offset == pytest.approx(2.0)  # Redis ahead of this machine
    assert _sample(-2.0).offset == pytest.approx(-2.0)


def test_every_command_of_the_acl_advice_is_probed() -> None:
    """The probe reads its commands from LAYER_ACL and WORKER_ACL (what README.rst and
    docs/deployment.rst advise): a command added there without a probe fails here."""
    wanted = permissions.commands(f"{LAYER_ACL} {WORKER_ACL}")
    assert {"evalsha", "blmpop", "cluster|shards", "blmove", "pubsub|numsub"} <= set(wanted)
    assert not [command for command in wanted if command not in permissions.PROBES]
    assert permissions.commands("~asgi:* -@all +@read +get") == ("get",)
    assert permissions.rules_for(workers=False) == LAYER_ACL


def test_select_and_cluster_commands_are_needed_only_where_used() -> None:
    assert not permissions.needed("select", db=0, cluster=False)
    assert permissions.needed("select", db=2, cluster=False)
    assert not permissions.needed("cluster|shards", db=0, cluster=False)
    assert permissions.needed("cluster|shards", db=0, cluster=True)
    assert permissions.needed("blmove", db=0, cluster=False)


def test_the_scratch_keys_share_one_slot_under_the_prefix() -> None:
    scratch = permissions.Scratch("myapp")
    assert len({key_slot(key) for key in scratch.keys}) == 1
    assert all(key.startswith("myapp:{preflight:") for key in scratch.keys)
    assert scratch.channel.startswith("myapp:presence:preflight-")
    assert scratch.ring.startswith("myapp:ring:preflight-")
    for command in permissions.PROBES.values():  # every probe touches scratch keys only
        keys = [a for a in command(scratch, 0) if isinstance(a, str) and a.startswith("myapp")]
        assert all(key in (*scratch.keys, scratch.channel, scratch.ring, scratch.key("*"))
                   for key in keys)


def test_the_report_gives_a_line_per_finding_a_summary_and_the_exit_status() -> None:
    warning = Finding("warning", "channels_distributed.W010", "redis://a:1/0", "evicts", "stop")
    error = Finding("error", "channels_distributed.E012", "redis://b:1/0", "refused", "grant")
    report = Report([warning], [Checked("redis://a:1/0", "Redis 6.2.14", "BLPOP then LPOP")],
                    primaries=2)
    assert report.status == 0
    assert report.lines() == [
        "WARNING channels_distributed.W010 redis://a:1/0: evicts. Fix: stop",
        "checked 1 of 2 server(s) (redis://a:1/0: Redis 6.2.14 (BLPOP then LPOP)): 0 error(s), "
        "1 warning(s)"]
    report.findings.append(error)
    assert report.status == 1
    shown = json.loads(json.dumps(report.as_json()))
    assert shown["ok"] is False and shown["errors"] == 1 and shown["warnings"] == 1
    assert shown["primaries"] == 2
    assert shown["findings"][1] == {"level": "error", "id": "channels_distributed.E012",
                                    "server": "redis://b:1/0", "problem": "refused",
                                    "fix": "grant"}
    assert shown["servers"] == [{"server": "redis://a:1/0", "version": "Redis 6.2.14",
                                 "fallbacks": "BLPOP then LPOP"}]
