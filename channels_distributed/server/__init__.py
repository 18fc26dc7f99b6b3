"""The HTTP/1.1 + WebSocket server behind ``channels_distributed.gunicorn.ASGIWorker``.

httptools parses HTTP/1.1; WebSocket frames are read by a fast path for whole small messages and
by the ``websockets`` sans-I/O protocol for the rest; uvloop runs it.
``Server`` is usable without gunicorn (tests, embedding); the gunicorn worker wraps it.
"""

from channels_distributed.conf.server import ServerConfig
from channels_distributed.server.server import Server

__all__ = ["Server", "ServerConfig"]
