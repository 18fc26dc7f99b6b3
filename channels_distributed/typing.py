"""ASGI types, in one place: asgiref.typing's, and the loose forms the package uses inside.

``asgiref.typing`` describes each scope and event as a ``TypedDict`` (``HTTPScope``,
``HTTPResponseStartEvent``, ...), and an application as ``ASGI3Application``; they are
re-exported here for code that wants them. Inside, the package builds events as dict literals and
reads them by key as they arrive from applications, servers and Redis (msgpack decodes plain
dicts, and an application may send keys a ``TypedDict`` does not list): typed as asgiref's unions
of ``TypedDict``s, which share no key but ``type``, nearly every one of them would need a ``cast``
under mypy --strict. So here a scope and an event are ``dict[str, Any]``, defined once below, and
nowhere else. (``protocol/`` spells ``dict[str, Any]`` out: it imports nothing above itself.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.typing import (
    ASGI2Application,
    ASGI3Application,
    ASGIApplication,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
)

__all__ = [
    "ASGI2Application",
    "ASGI3Application",
    "ASGIApp",
    "ASGIApplication",
    "ASGIReceiveCallable",
    "ASGIReceiveEvent",
    "ASGISendCallable",
    "ASGISendEvent",
    "Event",
    "Receive",
    "Scope",
    "Send",
]

#: A scope or an event as the package handles it (see above for why not asgiref's TypedDicts).
Scope = dict[str, Any]
Event = dict[str, Any]
#: An application's ``receive`` and ``send``, loose as ``Event``.
Receive = Callable[[], Awaitable[Event]]
Send = Callable[[Event], Awaitable[None]]
#: An ASGI 3 application as the package calls it (``interfaces.adapt`` makes one of any app).
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
