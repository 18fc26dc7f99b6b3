"""The worker's settings: a bad one fails at construction, naming the setting and the fix."""

from __future__ import annotations

import pytest

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.worker import Node


async def _app(scope: dict, receive: object, send: object) -> None:
    """An ASGI 3 application that is never called here."""


@pytest.mark.parametrize(
    ("options", "setting", "hint"),
    [
        ({"concurrency": 0}, "concurrency", "expected a positive whole number, got 0"),
        ({"max_chunk": "64k"}, "max_chunk", "expected a positive whole number"),
        ({"grace": -1}, "grace", "expected zero or a positive number, got -1"),
        ({"redis_timeout": 0}, "redis_timeout", "expected a positive number, got 0"),
        ({"lifespan": "maybe"}, "lifespan", "use one of auto, on, off"),
        ({"interface": "wsgi"}, "interface", "use one of auto, asgi3, asgi2, legacy"),
        ({"keys": ["a b"]}, "keys", "letters, digits"),
        ({"url": "redis://db", "hosts": ["redis://db"]}, "hosts", "one way only"),
    ],
)
def test_bad_worker_settings_name_the_setting(options, setting, hint) -> None:

    options = {"key": "k", **options}
    if "keys" in options:
        del options["key"]
    with pytest.raises(ConfigurationError) as caught:
        Node(_app, **options)
    assert caught.value.setting == setting
    assert hint in str(caught.value)


@pytest.mark.parametrize("channels", [["specific.abc!x"], ["has space"]])
def test_node_refuses_process_local_or_bad_channel_names(channels: list[str]) -> None:
    with pytest.raises(ConfigurationError, match="plain channel names"):
        Node(_app, channels=channels, url="redis://127.0.0.1:1/0")


def test_a_node_with_nothing_to_serve_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="key="):
        Node(_app, url="redis://127.0.0.1:1/0")
