"""The project's views: pages with templates and CSRF-checked forms, the chat pages, and a JSON
API (a broadcast to a chat room, a background task, a streaming download, an upload)."""

import hashlib
import os
from collections.abc import AsyncIterator

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import Task


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Hello, world", content_type="text/plain")


def page(request: HttpRequest) -> HttpResponse:
    """A template page (the Django benchmark's second page)."""
    items = [{"n": n, "square": n * n} for n in range(20)]
    return render(request, "demo/page.html", {"items": items, "pid": os.getpid()})


def index(request: HttpRequest) -> HttpResponse:
    """A form (CSRF-checked) whose name is kept in the session: every worker sees it."""
    if request.method == "POST":
        request.session["name"] = request.POST.get("name", "")[:50]
        return redirect("index")
    return render(request, "demo/index.html", {"name": request.session.get("name"),
                                               "pid": os.getpid()})


def echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"method": request.method, "path": request.path,
                         "query": request.META.get("QUERY_STRING", ""),
                         "body_length": len(request.body)})


def whoami(request: HttpRequest) -> JsonResponse:
    """The session as this worker sees it."""
    user = request.user.username if request.user.is_authenticated else None
    return JsonResponse({"user": user, "name": request.session.get("name"),
                         "pid": os.getpid()})


def chat_index(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/chat/index.html")


def chat_room(request: HttpRequest, room_name: str) -> HttpResponse:
    return render(request, "demo/chat/room.html", {"room_name": room_name})


@require_POST  # type: ignore[untyped-decorator]
def broadcast(request: HttpRequest, room_name: str) -> JsonResponse:
    """A sync view sending to a chat room through async_to_sync(group_send), as Django
    projects do."""
    text = request.POST.get("message", "")
    async_to_sync(get_channel_layer().group_send)(f"chat_{room_name}", {
        "type": "chat.message", "message": text, "user": "broadcast", "sent_by": os.getpid()})
    return JsonResponse({"sent": text, "room": room_name, "pid": os.getpid()})


@require_POST  # type: ignore[untyped-decorator]
def start_task(request: HttpRequest) -> JsonResponse:
    """Queue a task for the worker serving the ``tasks`` channel (channels_distributed.demo.asgi.s
    ChannelNameRouter); poll ``task`` for its result."""
    task = Task.objects.create(text=request.POST.get("text", ""), queued_by_pid=os.getpid())
    async_to_sync(get_channel_layer().send)("tasks", {"type": "task.run", "id": task.pk,
                                                      "text": task.text})
    return JsonResponse({"id": task.pk, "status": task.status}, status=202)


def task(request: HttpRequest, pk: int) -> JsonResponse:
    found = get_object_or_404(Task, pk=pk)
    return JsonResponse({"id": found.pk, "status": found.status, "result": found.result,
                         "worker_pid": found.worker_pid, "queued_by_pid": found.queued_by_pid})


def download(request: HttpRequest) -> StreamingHttpResponse:
    """``?mb=N`` megabytes, streamed a block at a time from an async iterator."""
    size = int(float(request.GET.get("mb", "1")) * 1024 * 1024)
    block = bytes(range(256)) * 256  # 64 KiB

    async def blocks() -> AsyncIterator[bytes]:
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            sent += len(piece)
            yield piece

    response = StreamingHttpResponse(blocks(), content_type="application/octet-stream")
    response["Content-Length"] = str(size)
    return response


@require_POST  # type: ignore[untyped-decorator]
def upload(request: HttpRequest) -> JsonResponse:
    """A multipart upload (field ``file``): its size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    for chunk in request.FILES["file"].chunks():
        digest.update(chunk)
        size += len(chunk)
    return JsonResponse({"size": size, "sha256": digest.hexdigest(), "pid": os.getpid()})


def csrf(request: HttpRequest) -> JsonResponse:
    """A CSRF token for API clients (the cookie comes with it)."""
    from django.middleware.csrf import get_token

    return JsonResponse({"token": get_token(request)})

