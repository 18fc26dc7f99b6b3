"""Detect and adapt applications to ASGI 3: ASGI 3, ASGI 2 class-style, and legacy consumers.

``adapt(app)`` returns an ASGI 3 callable for any of:

* ASGI 3: ``async def app(scope, receive, send)`` (Django's ``get_asgi_application()``, Starlette,
  Channels' ``ProtocolTypeRouter``, the distributor);
* ASGI 2: ``cls(scope)`` returning an instance awaited as ``instance(receive, send)``;
* legacy (Channels 1 / ASGI 1): ``consumer(message)``, sync or async, answering through
  ``message['reply_channel'].send({...})`` -- at once, or later from a task it scheduled on
  ``message['channel_layer'].loop``.

Auto-detection looks at the callable's signature: three positional parameters mean ASGI 3; a class,
or a one-parameter callable whose parameter is named ``scope``, means ASGI 2; any other
one-parameter callable is a legacy consumer. ``interface=`` overrides it. Legacy consumers run in
``channels_distributed.legacy.adapter.LegacyAdapter``; this module keeps the detection, the ASGI 2
adapter and ``adapt``.
"""

from __future__ import annotations

import inspect
from typing import Any

from channels_distributed.conf.checks import choice
from channels_distributed.conf.node import INTERFACES
from channels_distributed.exceptions import ConfigurationError
from channels_distributed.legacy.adapter import DEFAULT_LEGACY_TIMEOUT, LegacyAdapter, app_name
from channels_distributed.typing import ASGIApp, Receive, Scope, Send

__all__ = ["INTERFACES", "adapt", "detect_interface"]


def _positional(fn: Any) -> tuple[list[inspect.Parameter], bool]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in signature.parameters.values() if p.kind in kinds]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values())
    return params, varargs


def detect_interface(app: Any) -> str:
    """Return ``"asgi3"``, ``"asgi2"`` or ``"legacy"`` for ``app``, judged by its signature."""
    if inspect.isclass(app):
        return "asgi2"
    if not callable(app):
        raise ConfigurationError(
            "application",
            f"expected a callable, got {type(app).__name__}",
            "point gunicorn (or the worker) at an ASGI application or a consumer function",
        )
    target = app if inspect.isroutine(app) else type(app).__call__
    params, varargs = _positional(app)
    if varargs or len(params) >= 3:
        return "asgi3"
    if len(params) == 1:
        return "asgi2" if params[0].name == "scope" else "legacy"
    raise ConfigurationError(
        "interface",
        f"cannot tell the interface of {app_name(app)}{inspect.signature(target)}",
        "use (scope, receive, send) for ASGI 3, (scope) for ASGI 2, (message) for a legacy "
        "consumer, or set interface='asgi3'|'asgi2'|'legacy' explicitly",
    )


def adapt(
    app: Any, interface: str = "auto", legacy_timeout: float = DEFAULT_LEGACY_TIMEOUT
) -> ASGIApp:
    """Wrap ``app`` as an ASGI 3 application. ``interface`` is auto, asgi3, asgi2 or legacy."""
    choice("interface", interface, INTERFACES)
    if interface == "auto":
        interface = detect_interface(app)
    if interface == "asgi3":
        return app  # type: ignore[no-any-return]
    if interface == "asgi2":
        return _asgi2(app)
    return LegacyAdapter(app, timeout=legacy_timeout)


def _asgi2(app: Any) -> ASGIApp:
    async def asgi2_adapter(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    asgi2_adapter.__qualname__ = f"asgi2({app_name(app)})"
    return asgi2_adapter
