"""Channels consumers used by tests and the demo."""

import os
from typing import Any

from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """Joins the group named in the URL and relays group messages to the socket."""

    async def connect(self) -> None:
        self.group = self.scope["url_route"]["kwargs"]["group"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "text": content.get("text", "")}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"text": event["text"]})


class BackgroundConsumer(AsyncConsumer):
    """A background-work consumer on a named channel (a ``"channel"`` scope), as Channels
    projects run with ``manage.py runworker``: it answers on the reply channel it is given."""

    async def thumbnail_make(self, message: dict[str, Any]) -> None:
        await self.channel_layer.send(message["reply"], {
            "type": "thumbnail.done", "name": message["name"], "pid": os.getpid(),
            "channel": self.scope["channel"]})
