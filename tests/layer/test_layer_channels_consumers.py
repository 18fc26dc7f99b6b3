"""The layer under real Channels consumers and a sync Django view."""

from __future__ import annotations

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from channels_distributed.demo.routing import websocket_urlpatterns


@pytest.fixture
def layer_settings(redis_single):
    layers = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                          "CONFIG": {"hosts": redis_single.hosts, "prefix": "django"}}}
    with override_settings(CHANNEL_LAYERS=layers):
        yield
    channel_layers.backends.clear()


def _said(message: str, user: str = "anonymous") -> dict:
    """What the tutorial chat delivers (in one process: sent and delivered by this one)."""
    return {"message": message, "user": user, "sent_by": os.getpid(),
            "delivered_by": os.getpid()}


async def test_chat_consumers_broadcast_through_the_layer(layer_settings) -> None:
    app = URLRouter(websocket_urlpatterns)
    alice = WebsocketCommunicator(app, "/ws/chat/lobby/")
    bob = WebsocketCommunicator(app, "/api/ws/chat/lobby/")  # the same room, another route
    assert (await alice.connect())[0] and (await bob.connect())[0]
    await alice.send_json_to({"message": "hello bob"})
    assert await bob.receive_json_from(timeout=5) == _said("hello bob")
    assert await alice.receive_json_from(timeout=5) == _said("hello bob")
    await bob.disconnect()
    await alice.send_json_to({"message": "anyone?"})
    assert await alice.receive_json_from(timeout=5) == _said("anyone?")
    await alice.disconnect()
    await channel_layers["default"].flush()


@pytest.mark.django_db(transaction=False)
async def test_sync_view_group_send_reaches_a_consumer(layer_settings) -> None:
    app = URLRouter(websocket_urlpatterns)
    listener = WebsocketCommunicator(app, "/ws/chat/news/")
    assert (await listener.connect())[0]

    def post() -> int:
        # Django's test client does not check CSRF tokens (tests/e2e/test_django_project.py
        # posts with one, through the edge).
        return Client().post("/api/broadcast/news/", data={"message": "breaking"}).status_code

    # The view runs in a thread of its own, calling async_to_sync(group_send).
    assert await sync_to_async(post, thread_sensitive=False)() == 200
    assert await listener.receive_json_from(timeout=5) == _said("breaking", "broadcast")
    await listener.disconnect()
    await asyncio.sleep(0)
