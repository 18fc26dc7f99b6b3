"""Bad configuration fails at construction, naming the setting and the fix."""

from __future__ import annotations

import re
import ssl

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from channels_distributed import RedisChannelLayer
from channels_distributed.conf import LayerConfig, parse_hosts
from channels_distributed.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("config", "setting", "hint"),
    [
        ({"hots": ["redis://x"]}, "hots", "remove it from CONFIG"),
        ({"hosts": "redis://localhost:6379"}, "hosts", "list"),
        ({"hosts": [object()]}, "hosts", "cannot read host"),
        ({"hosts": ["http://localhost"]}, "hosts", "redis://"),
        ({"hosts": ["redis://localhost/zero"]}, "hosts", "number"),
        ({"hosts": [{"sentinels": [("h", 1)]}]}, "hosts", "master_name"),
        ({"capacity": "100"}, "capacity", "whole number"),
        ({"capacity": 0}, "capacity", "positive"),
        ({"capacity": True}, "capacity", "number"),
        ({"expiry": -1}, "expiry", "positive"),
        ({"group_expiry": "1d"}, "group_expiry", "seconds"),
        ({"channel_capacity": ["a"]}, "channel_capacity", "dict"),
        ({"channel_capacity": {"a*": "3"}}, "channel_capacity", "whole numbers"),
        ({"symmetric_encryption_keys": "one-key"}, "symmetric_encryption_keys", "wrap"),
        ({"serializer_format": "pickle"}, "serializer_format", "msgpack"),
        ({"prefix": "a{b}"}, "prefix", "plain name"),
        ({"retry_window": 0}, "retry_window", "positive"),
    ],
)
def test_bad_config_names_the_setting(config, setting, hint) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisChannelLayer(**config)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}:")
    assert hint in str(caught.value)


def test_channels_redis_config_is_accepted_as_is() -> None:
    layer = RedisChannelLayer(
        hosts=[("localhost", 6379)], prefix="asgi", expiry=60, group_expiry=86400,
        capacity=100, channel_capacity={"http.request": 200, re.compile(r"^websocket"): 20},
        symmetric_encryption_keys=["secret"], random_prefix_length=12,
        serializer_format="msgpack",
    )
    assert layer.config.capacity_of("http.request") == 200
    assert layer.config.capacity_of("websocket.send!x") == 20
    assert layer.config.capacity_of("other") == 100
    assert layer.extensions == ["groups", "flush"]


def test_host_forms() -> None:
    default, url, pair, tls, unix, kwargs, sentinel = parse_hosts([
        "redis://localhost:6379",
        "redis://alice:s%40cret@db.example:6380/3",
        ("10.0.0.1", 7000),
        "rediss://:pw@secure:6390/1?ssl_cert_reqs=none",
        "unix:///run/redis.sock?db=2",
        {"address": ("h", 1234), "password": "p", "db": 4},
        {"sentinels": [("s1", 26379), ("s2", 26379)], "master_name": "mymaster",
         "password": "pw", "sentinel_kwargs": {"password": "spw"}},
    ])
    assert (default.host, default.port, default.db) == ("localhost", 6379, 0)
    assert (url.username, url.password, url.host, url.port, url.db) == (
        "alice", "s@cret", "db.example", 6380, 3)
    assert (pair.host, pair.port) == ("10.0.0.1", 7000)
    assert isinstance(tls.ssl_context, ssl.SSLContext) and tls.password == "pw"
    assert tls.ssl_context.verify_mode == ssl.CERT_NONE and tls.db == 1
    assert unix.path == "/run/redis.sock" and unix.db == 2
    assert (kwargs.host, kwargs.port, kwargs.password, kwargs.db) == ("h", 1234, "p", 4)
    assert sentinel.sentinels == (("s1", 26379), ("s2", 26379))
    assert sentinel.master_name == "mymaster" and sentinel.password == "pw"
    assert dict(sentinel.sentinel_kwargs) == {"password": "spw"}
    assert parse_hosts(None)[0].describe() == "redis://localhost:6379/0"


def test_config_is_frozen() -> None:
    config = LayerConfig.from_kwargs()
    with pytest.raises(AttributeError):
        config.capacity = 5  # type: ignore[misc]


def test_loaded_from_django_settings(redis_single) -> None:
    layers = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                          "CONFIG": {"hosts": redis_single.hosts, "capacity": 7}}}
    with override_settings(CHANNEL_LAYERS=layers):
        layer = get_channel_layer()
        assert isinstance(layer, RedisChannelLayer) and layer.capacity == 7
    bad = {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                       "CONFIG": {"capacty": 7}}}
    with override_settings(CHANNEL_LAYERS=bad), pytest.raises(ConfigurationError, match="capacty"):
        get_channel_layer()
