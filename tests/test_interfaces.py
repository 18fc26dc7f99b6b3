"""Interface detection, ``adapt`` and the ASGI 2 adapter, driven through the ASGI 3 interface.

The legacy adapter's own tests are in tests/legacy/test_adapter.py.
"""

from __future__ import annotations

import functools

import pytest

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.interfaces import adapt, detect_interface
from channels_distributed.legacy.adapter import LegacyAdapter
from tests.helpers import run_asgi
from tests.legacy.test_adapter import HTTP


async def asgi3(scope, receive, send):
    pass


class ASGI3Class:
    async def __call__(self, scope, receive, send):
        pass


class ASGI2:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})


def asgi2_function(scope):
    return ASGI2(scope)


def consumer(message):
    message.reply_channel.send({"status": 200, "content": b"legacy"})


async def async_consumer(message):
    await message.reply_channel.send({"status": 200, "content": b"legacy"})


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (asgi3, "asgi3"),
        (ASGI3Class(), "asgi3"),
        (functools.partial(asgi3), "asgi3"),
        (ASGI2, "asgi2"),
        (asgi2_function, "asgi2"),
        (consumer, "legacy"),
        (async_consumer, "legacy"),
        (lambda *args: None, "asgi3"),
    ],
)
def test_detection(app, interface):
    assert detect_interface(app) == interface


def test_detection_failures_name_the_fix():
    with pytest.raises(ConfigurationError, match="interface: cannot tell"):
        detect_interface(lambda a, b: None)
    with pytest.raises(ConfigurationError, match="application: expected a callable"):
        detect_interface(42)
    with pytest.raises(ConfigurationError, match="interface: unknown value 'asgi4'"):
        adapt(asgi3, "asgi4")
    with pytest.raises(ConfigurationError, match="legacy_timeout"):
        adapt(consumer, legacy_timeout=0)


def test_explicit_interface_overrides():
    assert adapt(asgi3, "asgi3") is asgi3
    assert isinstance(adapt(ASGI2, "legacy"), LegacyAdapter)


def test_legacy_consumers_get_the_legacy_adapter_with_its_timeout():
    adapted = adapt(consumer, legacy_timeout=7.5)
    assert isinstance(adapted, LegacyAdapter)
    assert adapted.consumer is consumer and adapted.timeout == 7.5




async def test_asgi2_adapter():
    sent = await run_asgi(adapt(ASGI2), HTTP)
    assert sent[-1]["body"] == b"asgi2"
