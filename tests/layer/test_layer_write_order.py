"""What leaves first: a consumer's answer goes to Redis before its reader's next pop.

A reader re-sends its blocking pop (BLMPOP; BLPOP on Redis 6.2) after handing entries over.
Sent at once, that write would go out before the answer of the consumer it just woke, which
then waits behind it; the reader lets the woken consumers write first. Redis MONITOR shows
the order.
"""

from __future__ import annotations

import asyncio

from helpers import wait_for
from monitor import Monitor, arguments, command_name

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer
from channels_distributed.protocol.keys import KeySpace

WAIT = 10.0


async def test_answer_leaves_before_the_next_pop(redis_fresh: RedisServer) -> None:
    consumer = RedisChannelLayer(hosts=[redis_fresh.url], prefix="order")
    sender = RedisChannelLayer(hosts=[redis_fresh.url], prefix="order")
    with Monitor(redis_fresh.port) as monitor:
        try:
            channel = await _exchange(consumer, sender, monitor)
        finally:
            await consumer.close()
            await sender.close()
        lines = monitor.commands()
    local = KeySpace("order").channel(channel)
    delivered = next(i for i, line in enumerate(lines) if _push_to(line) == local)
    following = [line for line in lines[delivered + 1:]
                 if _pop_of(line) == local or _push_to(line) not in (None, local)]
    assert following, "the consumer never answered"
    assert command_name(following[0]) == "EVALSHA", following[:2]


async def _exchange(consumer: RedisChannelLayer, sender: RedisChannelLayer,
                    monitor: Monitor) -> str:
    channel, reply_to = await consumer.new_channel(), await sender.new_channel()

    async def answer() -> None:
        message = await consumer.receive(channel)
        await consumer.send(message["reply_to"], {"type": "pong"})

    # Connections are made on first use: the consumer's sending one exists before the exchange.
    await consumer.send(reply_to, {"type": "warm-up"})
    assert (await asyncio.wait_for(sender.receive(reply_to), WAIT))["type"] == "warm-up"
    task = asyncio.ensure_future(answer())
    # The consumer is parked in its pop before the message is sent.
    local = KeySpace("order").channel(channel)
    await asyncio.to_thread(wait_for, lambda: any(_pop_of(line) == local
                                                  for line in monitor.commands()), WAIT)
    await sender.send(channel, {"type": "ping", "reply_to": reply_to})
    assert (await asyncio.wait_for(sender.receive(reply_to), WAIT))["type"] == "pong"
    await asyncio.wait_for(task, WAIT)
    # The consumer's reader lingers after a receive: wait for its next pop to be seen.
    local = KeySpace("order").channel(channel)
    await asyncio.to_thread(wait_for, lambda: _pops_after_answer(monitor.commands(), local), WAIT)
    return channel


def _push_to(line: str) -> str | None:
    # The layer's push: EVALSHA <sha> 1 <list> <capacity> <ttl> <entries...>.
    args = arguments(line)
    return args[3] if args[0].upper() == "EVALSHA" and args[2] == "1" else None


def _pop_of(line: str) -> str | None:
    # Redis 7: BLMPOP <timeout> 1 <list> ...; Redis 6.2: BLPOP <list> <timeout>.
    args = arguments(line)
    name = args[0].upper()
    return args[3] if name == "BLMPOP" else args[1] if name == "BLPOP" else None


def _pops_after_answer(lines: list[str], local: str) -> bool:
    # Only what follows the message's push counts: MONITOR's lines may lag, and the warm-up's
    # push followed by the consumer's first pop must not pass for the answer and the next pop.
    delivered = next((i for i, line in enumerate(lines) if _push_to(line) == local), None)
    if delivered is None:
        return False
    after = lines[delivered + 1:]
    pushes = [i for i, line in enumerate(after) if _push_to(line) not in (None, local)]
    return bool(pushes) and any(_pop_of(line) == local for line in after[pushes[-1] + 1:])
