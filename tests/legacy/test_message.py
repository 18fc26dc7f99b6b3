"""The legacy message contract: Message and reply_channel.send from sync and async code."""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest
from helpers import wait_for_async

import channels_distributed
from channels_distributed import Message, RedisChannelLayer, ReplyChannel
from channels_distributed.legacy import message as home


async def test_message_is_dict_and_attribute_like(layer: RedisChannelLayer) -> None:
    reply = await layer.new_channel()
    message = Message({"path": "/a", "reply_channel": reply, "body": b""}, channel="http.request",
                      channel_layer=layer)
    assert message["path"] == message.path == "/a"
    assert message.channel == message["channel"] == "http.request"
    assert message.channel_layer is message["channel_layer"] is layer
    assert isinstance(message["reply_channel"], ReplyChannel)
    assert message.reply_channel == reply
    assert message.content == {"path": "/a", "reply_channel": reply, "body": b""}
    assert type(message.content["reply_channel"]) is str
    assert message["channel_layer"].loop is asyncio.get_running_loop()
    with pytest.raises(AttributeError, match="no key or attribute 'nope'"):
        _ = message.nope
    with pytest.raises(KeyError):
        _ = message["nope"]


async def test_reply_channel_send_from_sync_code_acts_at_once(layer: RedisChannelLayer) -> None:
    reply = await layer.new_channel()
    message = Message({"reply_channel": reply}, channel_layer=layer)

    def sync_consumer(msg: Message) -> None:
        msg["reply_channel"].send({"status": 200, "content": b"one"})  # no await, result dropped
        msg["reply_channel"].send({"status": 200, "content": b"two"})

    sync_consumer(message)
    first = await asyncio.wait_for(layer.receive(reply), 5)
    second = await asyncio.wait_for(layer.receive(reply), 5)
    assert (first["content"], second["content"]) == (b"one", b"two")


async def test_reply_channel_send_may_be_awaited(layer: RedisChannelLayer) -> None:
    reply = ReplyChannel(await layer.new_channel(), layer)
    await reply.send({"text": "awaited"})
    assert (await asyncio.wait_for(layer.receive(reply), 5))["text"] == "awaited"
    with pytest.raises(TypeError, match="takes a dict"):
        reply.send("not a dict")  # type: ignore[arg-type]


async def test_reply_channel_send_from_a_task_later(layer: RedisChannelLayer) -> None:
    reply = await layer.new_channel()
    message = Message({"reply_channel": reply}, channel_layer=layer)

    async def later(msg: Message) -> None:
        await asyncio.sleep(0.01)
        msg["reply_channel"].send({"content": b"later"})

    message["channel_layer"].loop.create_task(later(message))
    assert (await asyncio.wait_for(layer.receive(reply), 5))["content"] == b"later"


async def test_reply_channel_send_from_another_thread(layer: RedisChannelLayer) -> None:
    reply = await layer.new_channel()
    channel = ReplyChannel(reply, layer)
    loop = asyncio.get_running_loop()
    handle = await loop.run_in_executor(None, lambda: channel.send({"content": b"threaded"}))
    await handle
    assert (await asyncio.wait_for(layer.receive(reply), 5))["content"] == b"threaded"


async def test_failed_fire_and_forget_send_is_logged(layer: RedisChannelLayer, caplog) -> None:
    channel = ReplyChannel("full-reply", layer)
    layer.config = type(layer.config)(**{**layer.config.__dict__, "capacity": 1})
    channel.send({"n": 1})
    channel.send({"n": 2})  # over capacity: nobody awaits, so it must be logged
    await wait_for_async(lambda: "reply_channel.send failed" in caplog.text,
                         what="the failed send to be logged")


def test_reply_channel_pickles_and_copies_as_its_name() -> None:
    channel = ReplyChannel("specific.x!y", layer=None)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(channel)) == "specific.x!y"
    assert copy.deepcopy(channel) == "specific.x!y"
    assert channel.name == "specific.x!y"


def test_every_import_path_of_message_and_reply_channel_gives_the_same_classes() -> None:
    # channels_distributed.message is kept for compatibility: code written before the legacy
    # support became one package imports from there.
    from channels_distributed.message import Message as OldMessage
    from channels_distributed.message import ReplyChannel as OldReplyChannel

    assert Message is OldMessage is home.Message is channels_distributed.Message
    assert ReplyChannel is OldReplyChannel is home.ReplyChannel is channels_distributed.ReplyChannel
    assert Message.__module__ == ReplyChannel.__module__ == "channels_distributed.legacy.message"
