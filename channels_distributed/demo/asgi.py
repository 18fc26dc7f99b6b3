"""The project's ASGI application (ASGI_APPLICATION), run by ``manage.py runworker``: Django for
HTTP, the Channels tutorial chat for WebSocket, background tasks on named channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_distributed.demo.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .consumers import BackgroundConsumer, TaskConsumer  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        # Background work on named channels, served by `manage.py runworker NAME`: "tasks" by
        # the project's task view; "thumbnails" and "django" by the harness' tests.
        "channel": ChannelNameRouter(
            {
                "tasks": TaskConsumer.as_asgi(),
                "thumbnails": BackgroundConsumer.as_asgi(),
                "django": BackgroundConsumer.as_asgi(),
            }
        ),
    }
)
