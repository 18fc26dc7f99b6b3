"""The project's Channels consumers: the tutorial chat, an echo, and background tasks."""

import json
import os
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer


def who(scope: dict[str, Any]) -> str:
    user = scope.get("user")
    return user.username if user is not None and user.is_authenticated else "anonymous"


class ChatConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """The Channels tutorial's chat room (part 3, async): one group per room. Messages say which
    worker process sent them into the group and which one delivered them."""

    async def connect(self) -> None:
        self.room_group_name = f"chat_{self.scope['url_route']['kwargs']['room_name']}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or "{}").get("message", "")
        await self.channel_layer.group_send(self.room_group_name, {
            "type": "chat.message", "message": message, "user": who(self.scope),
            "sent_by": os.getpid()})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({
            "message": event["message"], "user": event.get("user"),
            "sent_by": event.get("sent_by"), "delivered_by": os.getpid()}))


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class TaskConsumer(AsyncConsumer):  # type: ignore[misc]
    """Background tasks sent by ``views.start_task`` to the ``tasks`` channel: the worker
    serving that channel (``manage.py runworker ... tasks``) does the work and records it in the
    shared database."""

    async def task_run(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(_finish)(message["id"], message["text"].upper())


def _finish(pk: int, result: str) -> None:
    from .models import Task

    Task.objects.filter(pk=pk).update(status="done", result=result, worker_pid=os.getpid())


class BackgroundConsumer(AsyncConsumer):  # type: ignore[misc]
    """A background-work consumer on a named channel (a ``"channel"`` scope), as Channels
    projects run with ``manage.py runworker``: it answers on the reply channel it is given."""

    async def thumbnail_make(self, message: dict[str, Any]) -> None:
        await self.channel_layer.send(message["reply"], {
            "type": "thumbnail.done", "name": message["name"], "pid": os.getpid(),
            "channel": self.scope["channel"]})
