"""The layer under real Channels consumers and a sync Django view."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings
from django.urls import path

from testproject.demo.consumers import ChatConsumer


@pytest.fixture
def layer_settings(redis_single):
    layers = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                          "CONFIG": {"hosts": redis_single.hosts, "prefix": "django"}}}
    with override_settings(CHANNEL_LAYERS=layers):
        yield
    channel_layers.backends.clear()


async def test_chat_consumers_broadcast_through_the_layer(layer_settings) -> None:
    app = URLRouter([path("ws/chat/<str:group>/", ChatConsumer.as_asgi())])
    alice = WebsocketCommunicator(app, "/ws/chat/lobby/")
    bob = WebsocketCommunicator(app, "/ws/chat/lobby/")
    assert (await alice.connect())[0] and (await bob.connect())[0]
    await alice.send_json_to({"text": "hello bob"})
    assert await bob.receive_json_from(timeout=5) == {"text": "hello bob"}
    assert await alice.receive_json_from(timeout=5) == {"text": "hello bob"}
    await bob.disconnect()
    await alice.send_json_to({"text": "anyone?"})
    assert await alice.receive_json_from(timeout=5) == {"text": "anyone?"}
    await alice.disconnect()
    await channel_layers["default"].flush()


@pytest.mark.django_db(transaction=False)
async def test_sync_view_group_send_reaches_a_consumer(layer_settings) -> None:
    app = URLRouter([path("ws/chat/<str:group>/", ChatConsumer.as_asgi())])
    listener = WebsocketCommunicator(app, "/ws/chat/news/")
    assert (await listener.connect())[0]

    def post() -> int:
        return Client().post("/broadcast/news/", data=b"breaking",
                             content_type="text/plain").status_code

    # The view runs in a thread of its own, calling async_to_sync(group_send).
    assert await sync_to_async(post, thread_sensitive=False)() == 200
    assert await listener.receive_json_from(timeout=5) == {"text": "breaking"}
    await listener.disconnect()
    await asyncio.sleep(0)
