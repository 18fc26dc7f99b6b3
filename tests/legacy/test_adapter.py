"""The legacy adapter: Channels 1 style consumers run as ASGI 3 applications, in memory."""

from __future__ import annotations

import asyncio

import pytest

from channels_distributed.exceptions import ConfigurationError, ProtocolError
from channels_distributed.interfaces import adapt
from channels_distributed.legacy.adapter import LegacyAdapter
from tests.helpers import run_asgi

HTTP = {
    "type": "http",
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/p",
    "query_string": b"",
    "root_path": "",
    "headers": [],
    "client": None,
    "server": None,
}


def consumer(message):
    message.reply_channel.send({"status": 200, "content": b"legacy:" + message["path"].encode()})


async def async_consumer(message):
    await message.reply_channel.send({"status": 201, "content": message["body"]})


def later_consumer(message):
    async def answer():
        await asyncio.sleep(0.01)
        message["reply_channel"].send({"status": 202, "content": b"later"})

    assert message["channel_layer"].loop is asyncio.get_running_loop()
    message["channel_layer"].loop.create_task(answer())


def never(message):
    pass


def bad_reply(message):
    message.reply_channel.send({"content": b"no status"})




def test_the_timeout_is_checked():
    with pytest.raises(ConfigurationError, match="legacy_timeout"):
        LegacyAdapter(consumer, timeout=0)


async def test_legacy_sync_reply():
    sent = await run_asgi(adapt(consumer), HTTP)
    assert sent == [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"legacy:/p", "more_body": False},
    ]


async def test_legacy_async_reply_with_body():
    body = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]
    sent = await run_asgi(adapt(async_consumer), {**HTTP, "method": "POST"}, body)
    assert sent[0]["status"] == 201 and sent[1]["body"] == b"abcd"


async def test_legacy_reply_from_task_on_layer_loop():
    sent = await run_asgi(adapt(later_consumer), HTTP)
    assert sent[0]["status"] == 202 and sent[1]["body"] == b"later"


async def test_legacy_timeout_answers_503():
    sent = await run_asgi(LegacyAdapter(never, timeout=0.05), HTTP)
    assert sent[0]["status"] == 503


async def test_legacy_invalid_reply_raises():
    with pytest.raises(ProtocolError, match="integer 'status'"):
        await run_asgi(adapt(bad_reply), HTTP)


async def test_legacy_lifespan_is_a_no_op():
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = await run_asgi(adapt(consumer), {"type": "lifespan"}, events)
    assert [e["type"] for e in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
