from django.urls import path

from .consumers import ChatConsumer, EchoConsumer

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi()),
    path("ws/chat/<str:room_name>/", ChatConsumer.as_asgi()),
    # The same room under /api/: CHANNELS_DISTRIBUTED routes it to the "api" worker, so two
    # clients of one room can be put on different workers.
    path("api/ws/chat/<str:room_name>/", ChatConsumer.as_asgi()),
]
