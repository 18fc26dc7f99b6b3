"""ASGI entry point of the test project: Django for HTTP, Channels consumers for WebSocket."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from testproject.demo.consumers import (  # noqa: E402
    BackgroundConsumer,
    ChatConsumer,
    EchoConsumer,
)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/echo/", EchoConsumer.as_asgi()),
                path("ws/chat/<str:group>/", ChatConsumer.as_asgi()),
            ]
        ),
        # Background work on named channels, served by `manage.py runworker NAME`.
        "channel": ChannelNameRouter(
            {"thumbnails": BackgroundConsumer.as_asgi(), "django": BackgroundConsumer.as_asgi()}
        ),
    }
)
