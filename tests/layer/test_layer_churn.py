"""Many short-lived channels (one per WebSocket connection): nothing of them stays behind."""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers import wait_for_async

from channels_distributed import RedisChannelLayer
from channels_distributed.transport.reader import Reader

WAIT = 10.0
# The waits below poll after every pass of the event loop (interval=0): a message delivered to a
# waiter is seen before the waiting task runs, and 3000 channels wait no 20 ms each.


def _reader(layer: RedisChannelLayer, channel: str) -> Reader:
    state = layer._state()
    return state.readers[layer.keys.channel(channel)]


def _sizes(reader: Reader) -> tuple[int, ...]:
    full = getattr(reader, "_full", ())  # (what the fix added)
    return (len(reader._buffers), len(reader._waiters), len(full), reader._waiting)


async def test_channels_used_once_leave_the_reader_as_it_was(layer: RedisChannelLayer) -> None:
    """A message that reaches a new_channel() name before its receive() is buffered; once it
    is received, nothing of that channel may stay (each left an empty buffer: ~900 B per
    WebSocket connection, and a scan of them all on every pop)."""
    first = await layer.new_channel()
    await layer.send(first, {"type": "x"})
    await layer.receive(first)  # the local list's reader now lingers, popping as messages arrive
    reader = _reader(layer, first)
    assert _sizes(reader) == (0, 0, 0, 0)
    # Other connections wait meanwhile, as on a busy server: the reader keeps popping.
    keeper = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(keeper))
    for _ in range(3000):
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "x"})
        await wait_for_async(lambda c=channel: c in reader._buffers, WAIT,
                             "the message to be buffered", interval=0)
        assert (await asyncio.wait_for(layer.receive(channel), WAIT))["type"] == "x"
    await layer.send(keeper, {"type": "done"})
    await asyncio.wait_for(waiting, WAIT)
    assert _sizes(reader) == (0, 0, 0, 0)


async def test_buffered_messages_nobody_receives_expire_from_the_reader(
        make_layer) -> None:
    """A connection that closed before its first receive() leaves its message buffered; once
    past expiry it is dropped from the process, not kept forever."""
    layer: RedisChannelLayer = make_layer(expiry=30)
    now = [1_000_000.0]
    layer.clock = lambda: now[0]
    probe = await layer.new_channel()
    await layer.send(probe, {"type": "x"})
    await layer.receive(probe)
    reader = _reader(layer, probe)
    orphans = [await layer.new_channel() for _ in range(200)]
    for channel in orphans:
        await layer.send(channel, {"type": "never received"})
    await wait_for_async(lambda: len(reader._buffers) == len(orphans), WAIT,
                         "the orphans to be buffered", interval=0)
    now[0] += 31  # past expiry
    await layer.send(probe, {"type": "later"})
    assert (await asyncio.wait_for(layer.receive(probe), WAIT))["type"] == "later"
    assert _sizes(reader) == (0, 0, 0, 0)
    await layer.flush()
    await layer.close()


@pytest.mark.parametrize("topology", ["single"], indirect=True)
async def test_a_cancelled_receive_logs_no_false_loss(
        layer: RedisChannelLayer, caplog: pytest.LogCaptureFixture) -> None:
    """A receive cancelled in the instant its message arrived keeps the message for the next
    receive. That left an empty buffer behind, and the competing reader then gave back zero
    messages: 'lost 0 messages ... ERR wrong number of arguments for 'lpush''."""
    caplog.set_level(logging.WARNING, logger="channels_distributed")
    for _ in range(3):
        waiting = asyncio.ensure_future(layer.receive("jobs"))
        await asyncio.sleep(0)
        reader = _reader(layer, "jobs")
        sent = layer.send_soon("jobs", {"type": "job"})  # not awaited: the waiter must not run
        await wait_for_async(lambda r=reader: r._waiting == 0, WAIT,
                             "the message to reach the waiter", interval=0)
        waiting.cancel()  # delivered, but the task has not run yet: the message is kept
        second = asyncio.ensure_future(layer.receive("jobs"))  # takes it from the buffer
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (await asyncio.wait_for(second, WAIT))["type"] == "job"
        await sent
        await layer.send("jobs", {"type": "next"})
        assert (await asyncio.wait_for(layer.receive("jobs"), WAIT))["type"] == "next"
    await wait_for_async(lambda: reader._task is not None and reader._task.done(), WAIT,
                         "the reader to rest", interval=0)
    assert "lost" not in caplog.text
    assert _sizes(reader) == (0, 0, 0, 0)
