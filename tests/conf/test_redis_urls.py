"""The URL forms of a Redis host: ``redis+sentinel://`` and several URLs in one variable."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from channels_distributed.cli import redis_urls
from channels_distributed.conf import parse_hosts
from channels_distributed.conf.hosts import split_urls
from channels_distributed.conf.target import RedisTarget
from channels_distributed.exceptions import ConfigurationError


def _without_ssl(spec: object) -> dict[str, object]:
    # SSL contexts compare by identity: the rest of the spec is compared by value.
    fields = dict(vars(spec))
    fields.pop("ssl_context")
    login = fields.pop("sentinel_login")
    fields["sentinel_login"] = _without_ssl(login) if login is not None else None
    return fields


@pytest.mark.parametrize(("url", "same_as"), [
    ("redis+sentinel://s1:26379,s2:26380/mymaster",
     {"sentinels": [("s1", 26379), ("s2", 26380)], "master_name": "mymaster"}),
    ("redis+sentinel://s1/mymaster/2",
     {"sentinels": [("s1", 26379)], "master_name": "mymaster", "db": 2}),
    ("redis+sentinel://alice:p%40ss@[::1]:5000,s2/m/1?sentinel_password=spw"
     "&socket_connect_timeout=2",
     {"sentinels": [("::1", 5000), ("s2", 26379)], "master_name": "m", "db": 1,
      "username": "alice", "password": "p@ss", "socket_connect_timeout": 2,
      "sentinel_kwargs": {"password": "spw"}}),
    ("rediss+sentinel://:pw@s1:26379/m?ssl_cert_reqs=none&sentinel_username=watch",
     {"sentinels": [("s1", 26379)], "master_name": "m", "password": "pw", "ssl": True,
      "ssl_cert_reqs": "none",
      "sentinel_kwargs": {"username": "watch", "ssl": True, "ssl_cert_reqs": "none"}}),
])
def test_a_sentinel_url_is_the_host_dict_it_stands_for(url: str,
                                                        same_as: dict[str, object]) -> None:
    from_url, from_dict, in_address = parse_hosts([url, same_as, {"address": url}])
    assert _without_ssl(from_url) == _without_ssl(from_dict) == _without_ssl(in_address)
    assert (from_url.ssl_context is None) == (from_dict.ssl_context is None)
    if from_url.ssl_context is not None:
        assert from_url.ssl_context.verify_mode == ssl.CERT_NONE
        assert from_url.sentinel_login is not None
        assert from_url.sentinel_login.ssl_context is not None


def test_url_and_the_cli_take_a_sentinel_url() -> None:
    target = RedisTarget.resolve(url="redis+sentinel://s1:26379/mymaster")
    assert target.hosts[0].master_name == "mymaster"
    assert "pw" not in target.hosts[0].describe()


@pytest.mark.parametrize(("url", "hint"), [
    ("redis+sentinel://s1:26379", "names no master"),
    ("redis+sentinel://s1:26379/", "names no master"),
    ("redis+sentinel://s1:26379/m/zero", "is not a number"),
    ("redis+sentinel://s1:26379/m/0/extra", "more than a master name"),
    ("redis+sentinel://s1:26379,,s2/m", "empty sentinel address"),
    ("redis+sentinel://s1:notaport/m", "not a port number"),
    ("redis+sentinel://s1/m?pasword=x", "did you mean"),
    ("redis+sentinel://s1/m?host=x", "unknown key"),
    ("sentinel://s1:26379/m", "redis+sentinel://"),
])
def test_bad_sentinel_urls_name_the_fix(url: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match="hosts") as caught:
        parse_hosts([url])
    assert hint in str(caught.value)


def test_a_host_dict_around_a_sentinel_url_adds_settings() -> None:
    spec, = parse_hosts([{"address": "redis+sentinel://s1/m?sentinel_password=spw",
                          "sentinel_kwargs": {"username": "watch"}, "db": 3}])
    assert dict(spec.sentinel_kwargs) == {"password": "spw", "username": "watch"}
    assert spec.db == 3
    with pytest.raises(ConfigurationError, match=r"'sentinel_kwargs' in .* is not a dict"):
        parse_hosts([{"address": "redis+sentinel://s1/m?sentinel_password=spw",
                      "sentinel_kwargs": "spw"}])


def test_a_sentinel_urls_password_is_not_shown() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_hosts(["redis+sentinel://u:secret@s1/m/x"])
    assert "secret" not in str(caught.value) and "***" in str(caught.value)


def test_several_urls_are_separated_by_whitespace() -> None:
    assert split_urls(" redis://a:1/0  redis+sentinel://s1,s2/m\tredis://b:2 ") == [
        "redis://a:1/0", "redis+sentinel://s1,s2/m", "redis://b:2"]
    with pytest.raises(ConfigurationError, match=r"CD_REDIS_URL.*separated by spaces"):
        split_urls("  ", "CD_REDIS_URL")


def test_the_worker_command_takes_several_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://a:1 redis://b:2")
    assert redis_urls([]) == ["redis://a:1", "redis://b:2"]
    assert redis_urls(["redis://c:3", "redis://d:4"]) == ["redis://c:3", "redis://d:4"]
    monkeypatch.delenv("REDIS_URL")
    assert redis_urls([]) == ["redis://localhost:6379/0"]
    hosts = RedisTarget.resolve(hosts=redis_urls(["redis://c:3", "redis://d:4"])).hosts
    assert [(h.host, h.port) for h in hosts] == [("c", 3), ("d", 4)]


def test_the_documented_sentinel_url_is_the_documented_dict() -> None:
    """docs/deployment.rst gives the Sentinel dict and the same as a URL."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deployment.rst").read_text()
    url = "redis+sentinel://:secret@s1,s2/mymaster/0?sentinel_password=sentinel-secret"
    assert f"    {url}\n" in text
    assert "by spaces (not commas" in text
    same = {"sentinels": [("s1", 26379), ("s2", 26379)], "master_name": "mymaster",
            "password": "secret", "sentinel_kwargs": {"password": "sentinel-secret"}}
    assert repr(same).replace("'", '"') in text.replace("\n", " ")
    assert parse_hosts([url]) == parse_hosts([same])
