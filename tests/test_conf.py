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
        ({"max_message_size": 0}, "max_message_size", "positive whole number"),
        ({"max_message_size": "1MB"}, "max_message_size", "size in bytes"),
        ({"max_message_size": 1.5e6}, "max_message_size", "proto-max-bulk-len"),
        ({"max_message_size": True}, "max_message_size", "whole number"),
        # A typo in a host dict connected to localhost:6379 without a word.
        ({"hosts": [{"adress": "redis://db:6379"}]}, "hosts", "'address'"),
        ({"hosts": [{"hostname": "db", "port": 6379}]}, "hosts", "unknown key(s) ['hostname']"),
        ({"hosts": [{"address": "redis://db", "pasword": "x"}]}, "hosts", "check the spelling"),
        ({"hosts": ["redis://db:6379/0?ssl_cert_req=none"]}, "hosts", "ssl_cert_reqs"),
        ({"hosts": [{"sentinels": [("s", 26379)], "master_name": "m",
                     "sentinel_kwargs": {"pasword": "x"}}]}, "hosts", "sentinel_kwargs"),
        # Bad ports were a bare ValueError that did not name the setting.
        ({"hosts": ["redis://db:99999/0"]}, "hosts", "1 to 65535"),
        ({"hosts": ["redis://db:port/0"]}, "hosts", "1 to 65535"),
        ({"hosts": [("db", "6379x")]}, "hosts", "1 to 65535"),
        ({"hosts": [("db", 0)]}, "hosts", "1 to 65535"),
        ({"hosts": [{"host": "db", "port": "abc"}]}, "hosts", "1 to 65535"),
        ({"hosts": [{"address": ("db", 70000)}]}, "hosts", "1 to 65535"),
        ({"hosts": [{"sentinels": [("s", "x")], "master_name": "m"}]}, "hosts", "1 to 65535"),
        ({"hosts": [{"host": "db", "db": -1}]}, "hosts", "database"),
        ({"hosts": [{"host": "db", "socket_connect_timeout": "soon"}]}, "hosts", "seconds"),
        ({"hosts": [{"host": "db", "ssl": True, "ssl_cert_reqs": "maybe"}]}, "hosts",
         "'required', 'optional' or 'none'"),
        ({"channel_capacity": {"a*": -1}}, "channel_capacity", "above zero"),
        ({"channel_capacity": {"a*": 0}}, "channel_capacity", "above zero"),
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


def test_a_bad_host_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_hosts([{"address": "redis://u:hunter2@db:6379/0", "pasword": "hunter3"}])
    with pytest.raises(ConfigurationError) as by_url:
        parse_hosts(["redis://u:hunter2@db:99999/0"])
    for error in (caught.value, by_url.value):
        assert "hunter" not in str(error) and "***" in str(error)


def test_channels_redis_host_dicts_are_accepted() -> None:
    """What channels_redis users put in host dicts: redis-py connection keyword arguments.
    The pool and socket tuning ones have no effect here, and are accepted all the same."""
    heroku, pooled, plain, sentinel = parse_hosts([
        {"address": "rediss://user@db:6380", "ssl_cert_reqs": None},
        {"address": "redis://db:6379/2", "max_connections": 1000, "socket_timeout": 5,
         "socket_keepalive": True, "retry_on_timeout": True, "health_check_interval": 30,
         "client_name": "web", "decode_responses": False, "encoding": "utf-8"},
        {"host": "db", "port": "6381", "db": "3", "username": "u", "password": "p",
         "ssl": True, "ssl_check_hostname": False, "ssl_min_version": ssl.TLSVersion.TLSv1_2,
         "socket_connect_timeout": 2},
        {"sentinels": [["s1", "26379"]], "master_name": "mymaster", "db": 1,
         "socket_timeout": 1, "sentinel_kwargs": {"password": "spw", "socket_timeout": 1}},
    ])
    assert heroku.ssl_context is not None
    assert heroku.ssl_context.verify_mode == ssl.CERT_NONE and heroku.port == 6380
    assert (pooled.host, pooled.port, pooled.db) == ("db", 6379, 2)
    assert (plain.port, plain.db, plain.username, plain.connect_timeout) == (6381, 3, "u", 2.0)
    assert plain.ssl_context is not None and not plain.ssl_context.check_hostname
    assert plain.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert sentinel.sentinels == (("s1", 26379),) and sentinel.db == 1
    assert sentinel.sentinel_login is not None and sentinel.sentinel_login.password == "spw"


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


def test_max_message_size_is_checked_before_anything_is_sent() -> None:
    """A message over max_message_size raises at once, naming the setting: no Redis is
    needed to find out (nothing listens on port 1)."""
    import asyncio

    from channels_distributed.conf.layer import MAX_MESSAGE_SIZE
    from channels_distributed.exceptions import MessageTooLarge

    assert LayerConfig.from_kwargs().max_message_size == MAX_MESSAGE_SIZE == 64 * 1024 * 1024
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:1/0"], max_message_size=1000)
    with pytest.raises(MessageTooLarge) as caught:
        asyncio.run(layer.send("big", {"data": b"x" * 1000}))
    assert caught.value.limit == 1000 and caught.value.size > 1000
    message = str(caught.value)
    assert "channel 'big'" in message and "max_message_size of 1,000 bytes" in message
    assert "nothing was sent" in message and "raise max_message_size" in message
    from channels.exceptions import MessageTooLarge as ChannelsMessageTooLarge
    assert isinstance(caught.value, ChannelsMessageTooLarge)


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


# -- the distributor's and the worker's settings (conf/) ---------------------------------------

async def _app(scope: dict, receive: object, send: object) -> None:
    """An ASGI 3 application that is never called here."""


def test_redis_target_forms() -> None:
    from channels_distributed.conf import RedisTarget

    seed = RedisTarget.resolve(host="db", port="6380", db=2, password="pw")
    assert [(h.host, h.port, h.db, h.password) for h in seed.hosts] == [("db", 6380, 2, "pw")]
    assert seed.prefix == "asgi" and seed.layer is None
    by_url = RedisTarget.resolve(url="redis://db:6381/1", prefix="p")
    assert (by_url.hosts[0].port, by_url.prefix, by_url.layer_hosts) == (
        6381, "p", ("redis://db:6381/1",))
    sharded = RedisTarget.resolve(hosts=["redis://a", ("b", 7000)])
    assert [h.host for h in sharded.hosts] == ["a", "b"]
    assert sharded.layer_hosts == ("redis://a", ("b", 7000))  # a channel layer gets the same
    layer = RedisChannelLayer(hosts=["redis://c:6390/4"], prefix="lp")
    from_layer = RedisTarget.resolve(layer=layer)
    assert (from_layer.hosts, from_layer.prefix, from_layer.layer) == (
        layer.config.hosts, "lp", layer)
    assert RedisTarget.resolve(layer=layer, prefix="own").prefix == "own"


def test_one_wording_for_a_bad_number_everywhere() -> None:
    """The layer, the distributor, the worker and the gunicorn worker's settings are checked by
    one helper (conf.checks): a bad number reads the same wherever it is set."""
    from channels_distributed.conf.server import ServerConfig
    from channels_distributed.distributor import create_path_distributor
    from channels_distributed.worker import Node

    attempts = [
        lambda: RedisChannelLayer(expiry=0),
        lambda: create_path_distributor(routes={"/": "k"}, worker_timeout=0),
        lambda: Node(_app, key="k", redis_timeout=0),
        lambda: ServerConfig(keepalive=0),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigurationError, match="expected a positive number, got 0"):
            attempt()
