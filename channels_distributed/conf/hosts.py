"""The ``hosts`` setting: every form channels_redis accepts, checked, as ``HostSpec`` objects.

channels_redis hands a host dict to redis-py (``ConnectionPool.from_url(address, **rest)`` or
``ConnectionPool(**dict)``), so the keys users write there are redis-py's connection keyword
arguments. The ones that say where Redis is and how to log in are honoured; the ones that tune
redis-py's own pool and sockets (which this package does not use) are accepted without effect,
so a channels_redis ``CONFIG`` works unchanged; any other key is a typo, refused with the list.
"""

from __future__ import annotations

import contextlib
import difflib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from ..exceptions import ConfigurationError
from .checks import positive

__all__ = ["HONOURED_KEYS", "IGNORED_KEYS", "SENTINEL_SCHEMES", "HostSpec", "parse_hosts",
           "split_urls"]

DEFAULT_URL = "redis://localhost:6379"
_HOSTS_FIX = (
    "give a list such as ['redis://localhost:6379/0'], [('localhost', 6379)], "
    "[{'address': 'rediss://user:pass@host:6380'}] or "
    "[{'sentinels': [('host', 26379)], 'master_name': 'mymaster'}] or "
    "['redis+sentinel://host:26379/mymaster']"
)
#: A master found through Sentinel, as one URL: the spelling of the Redis-Sentinel-Url package,
#: redisvl and prefect-redis (kombu's ``sentinel://host;sentinel://host2`` names no master).
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
_SENTINEL_FIX = ("write redis+sentinel://[user:pass@]host:26379[,host2:26379]/MASTER_NAME[/DB], "
                 "e.g. redis+sentinel://s1:26379,s2:26379/mymaster/0")
_SENTINEL_PORT = 26379
_SSL_KEYS = frozenset({
    "ssl_ca_certs", "ssl_ca_data", "ssl_ca_path", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile",
    "ssl_password", "ssl_check_hostname", "ssl_min_version", "ssl_ciphers",
    "ssl_include_verify_flags", "ssl_exclude_verify_flags",
})
#: Keys of a host dict that this package acts on.
HONOURED_KEYS = frozenset({
    "address", "host", "port", "db", "username", "password", "unix_socket_path", "path", "ssl",
    "ssl_context", "socket_connect_timeout", "sentinels", "master_name", "sentinel_kwargs",
    *_SSL_KEYS,
})
#: redis-py pool and socket tuning: accepted for compatibility, no effect here (the transport
#: keeps its own few connections, keepalive on, and bounds every wait itself).
IGNORED_KEYS = frozenset({
    "max_connections", "timeout", "socket_timeout", "socket_keepalive",
    "socket_keepalive_options", "socket_read_size", "retry", "retry_on_timeout",
    "retry_on_error", "health_check_interval", "client_name", "lib_name", "lib_version",
    "driver_info", "encoding", "encoding_errors", "decode_responses", "protocol",
    "single_connection_client", "auto_close_connection_pool",
})
_CERT_REQS = {None: ssl.CERT_NONE, "none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED}


@dataclass(frozen=True)
class HostSpec:
    """Where one Redis server (or one Sentinel-managed master) is, and how to log in."""

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    path: str | None = None  # unix socket
    ssl_context: ssl.SSLContext | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    sentinel_kwargs: Mapping[str, Any] = field(default_factory=dict)
    connect_timeout: float = 5.0
    #: How to log in to the sentinels themselves (from ``sentinel_kwargs``).
    sentinel_login: HostSpec | None = None
    #: A node of a Redis Cluster (set by the transport when it finds one, never by a user).
    cluster: bool = False

    def describe(self) -> str:
        if self.sentinels:
            return f"sentinel master {self.master_name!r} via {list(self.sentinels)}"
        if self.path:
            return f"unix:{self.path}"
        if self.cluster:
            return f"cluster node {self.host}:{self.port}"
        return f"{'rediss' if self.ssl_context else 'redis'}://{self.host}:{self.port}/{self.db}"


def _bad(problem: str, fix: str = _HOSTS_FIX) -> ConfigurationError:
    return ConfigurationError("hosts", problem, fix)


def _port(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _bad(f"port {value!r} in {where} is not a port number",
                   "give a whole number from 1 to 65535, e.g. 6379")
    return value


def _db(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return int(positive("hosts", value, "give a whole number from 0, e.g. 'db': 0 or "
                        "redis://host:6379/0", integer=True, zero=True,
                        name=f"database in {where}"))


def _timeout(value: Any, where: str) -> float:
    if value is None:
        return 5.0
    if isinstance(value, str):  # a URL's query gives strings
        with contextlib.suppress(ValueError):
            value = float(value)
    return float(positive("hosts", value, "give seconds, e.g. 5",
                          name=f"socket_connect_timeout in {where}"))


def _check_keys(options: Mapping[str, Any], where: str, allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in options if k not in allowed and k not in IGNORED_KEYS)
    if unknown:
        near = [m for k in unknown for m in difflib.get_close_matches(k, allowed, 1)]
        hint = f"did you mean {near}? " if near else ""
        raise _bad(f"unknown key(s) {unknown} in {where}",
                   f"{hint}check the spelling; the keys that take effect are {sorted(allowed)} "
                   f"(and redis-py's pool settings {sorted(IGNORED_KEYS)} are accepted and "
                   "have no effect here)")


def _ssl_context(options: Mapping[str, Any], where: str) -> ssl.SSLContext:
    reqs = options.get("ssl_cert_reqs", "required")
    if not isinstance(reqs, ssl.VerifyMode):
        if isinstance(reqs, str):
            reqs = reqs.lower()
        if reqs not in _CERT_REQS:
            raise _bad(f"ssl_cert_reqs {options['ssl_cert_reqs']!r} in {where} is not a "
                       "certificate requirement", "use 'required', 'optional' or 'none'")
        reqs = _CERT_REQS[reqs]
    try:
        context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"),
                                             capath=options.get("ssl_ca_path"),
                                             cadata=options.get("ssl_ca_data"))
        if reqs == ssl.CERT_NONE or _false(options.get("ssl_check_hostname", True)):
            context.check_hostname = False
        context.verify_mode = reqs
        _tune(context, options)
    except (OSError, ValueError, TypeError, ssl.SSLError) as exc:
        raise _bad(f"the TLS settings in {where} do not work: {exc}",
                   "check the ssl_* file paths and values") from None
    return context


def _tune(context: ssl.SSLContext, options: Mapping[str, Any]) -> None:
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"),
                                password=options.get("ssl_password"))
    version = options.get("ssl_min_version")
    if version is not None:
        context.minimum_version = (version if isinstance(version, ssl.TLSVersion)
                                   else ssl.TLSVersion[str(version)])
    if options.get("ssl_ciphers"):
        context.set_ciphers(options["ssl_ciphers"])
    for flag in options.get("ssl_include_verify_flags") or ():
        context.verify_flags |= flag
    for flag in options.get("ssl_exclude_verify_flags") or ():
        context.verify_flags &= ~flag


def _false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() in ("false", "0", "no"))


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password is None:
        return repr(url)
    return repr(parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@",
                                                              1)).geturl())


def _describe(spec: Mapping[str, Any]) -> str:
    # Error messages end up in logs: show where the host is, never a value that may be secret.
    shown = {k: spec[k] for k in ("address", "host", "port", "master_name") if k in spec}
    if isinstance(shown.get("address"), str):
        shown["address"] = _redacted(shown["address"]).strip("'")
    return f"host {shown!r} (keys {sorted(str(k) for k in spec)})"


def _from_url(url: str, extra: Mapping[str, Any]) -> HostSpec:
    if url.partition("://")[0].lower() in SENTINEL_SCHEMES:
        return _from_sentinel_url(url, extra)
    parsed = urlparse(url)
    where = _redacted(url)
    if parsed.scheme not in ("redis", "rediss", "unix"):
        raise _bad(f"{where} is not a redis://, rediss://, unix:// or redis+sentinel:// URL")
    query = dict(parse_qsl(parsed.query))
    _check_keys(query, f"the query of {where}",
                HONOURED_KEYS - {"address", "sentinels", "master_name", "sentinel_kwargs"})
    try:
        port = parsed.port
    except ValueError:
        raise _bad(f"the port in {where} is not a port number",
                   "give a whole number from 1 to 65535, e.g. redis://host:6379/0") from None
    path_db = parsed.path.strip("/") if parsed.scheme != "unix" else ""
    if path_db and not path_db.isdigit():
        raise _bad(f"database {path_db!r} in {where} is not a number",
                   "use redis://host:port/DB with a number")
    options = {**query, **extra}
    db = _db(query.get("db") or path_db or extra.get("db", 0), where)
    return HostSpec(
        host=parsed.hostname or "localhost",
        port=port or 6379,
        db=db,
        username=unquote(parsed.username) if parsed.username else options.get("username"),
        password=unquote(parsed.password) if parsed.password else options.get("password"),
        path=parsed.path if parsed.scheme == "unix" else None,
        ssl_context=_ssl_context(options, where) if parsed.scheme == "rediss" else None,
        connect_timeout=_timeout(options.get("socket_connect_timeout"), where),
    )


def _from_sentinel_url(url: str, extra: Mapping[str, Any]) -> HostSpec:
    """``redis+sentinel://[user:pass@]host[:port][,host2[:port2]]/master_name[/db][?options]``
    as the host dict it stands for: the login is the master's, ``sentinel_username`` and
    ``sentinel_password`` are the sentinels' (as in prefect-redis); ``rediss+sentinel`` is TLS
    to both."""
    where = _redacted(url)
    scheme, _, rest = url.partition("://")
    rest, _, query_text = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, members = netloc.rpartition("@")
    names = [unquote(part) for part in path.strip("/").split("/")] if path.strip("/") else []
    if not names or len(names) > 2:
        raise _bad(f"{where} names no master" if not names else
                   f"{where} has more than a master name and a database in its path",
                   _SENTINEL_FIX)
    query = dict(parse_qsl(query_text))
    login: dict[str, Any] = {key.removeprefix("sentinel_"): query.pop(key)
             for key in ("sentinel_username", "sentinel_password") if key in query}
    spec: dict[str, Any] = {**query, **extra, "master_name": names[0],
                            "sentinels": [_member(item, where) for item in members.split(",")]}
    if len(names) == 2:
        if not names[1].isdigit():
            raise _bad(f"database {names[1]!r} in {where} is not a number", _SENTINEL_FIX)
        spec["db"] = names[1]
    user, colon, password = userinfo.partition(":")
    if user:
        spec["username"] = unquote(user)
    if colon and password:
        spec["password"] = unquote(password)
    if scheme.lower().startswith("rediss"):
        spec["ssl"] = True
        login.update({k: v for k, v in spec.items() if k in _SSL_KEYS}, ssl=True)
    given = spec.get("sentinel_kwargs") or {}
    if login and isinstance(given, Mapping):  # else _sentinel_spec says what is wrong
        spec["sentinel_kwargs"] = {**login, **given}
    _check_keys(spec, f"the query of {where}",
                HONOURED_KEYS - {"address", "host", "port", "path", "unix_socket_path"})
    return _sentinel_spec(spec, where)


def _member(item: str, where: str) -> tuple[str, int]:
    """One sentinel of a ``redis+sentinel://`` URL: ``host``, ``host:port`` or ``[v6]:port``."""
    host, port = item, str(_SENTINEL_PORT)
    if item.startswith("["):
        host, _, after = item[1:].partition("]")
        port = after.removeprefix(":") or port
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host:
        raise _bad(f"{where} has an empty sentinel address in {item!r}", _SENTINEL_FIX)
    return host, _port(port, where)


def split_urls(text: str, setting: str = "REDIS_URL") -> list[str]:
    """Several Redis URLs in one string (an environment variable): separated by whitespace,
    since a ``redis+sentinel://`` URL separates its sentinels with commas."""
    urls = text.split()
    if not urls:
        raise ConfigurationError(setting, f"no Redis URL in {text!r}",
                                 "give one URL, or several separated by spaces")
    return urls


def _from_dict(spec: Mapping[str, Any]) -> HostSpec:
    where = _describe(spec)
    _check_keys(spec, where, HONOURED_KEYS)
    spec = dict(spec)
    if "sentinels" in spec or "master_name" in spec:
        return _sentinel_spec(spec, where)
    address = spec.pop("address", None)
    if isinstance(address, str):
        return _from_url(address, spec)
    if isinstance(address, (tuple, list)) and len(address) == 2:
        spec["host"], spec["port"] = address
    elif address is not None:
        raise _bad(f"'address' in {where} is neither a URL nor a (host, port) pair")
    host = spec.get("host", "localhost")
    if not isinstance(host, str) or not host:
        raise _bad(f"'host' in {where} is not a host name", "give e.g. 'host': 'localhost'")
    ssl_on = bool(spec.get("ssl", False))
    return HostSpec(
        host=host,
        port=_port(spec.get("port", 6379), where),
        db=_db(spec.get("db", 0), where),
        username=spec.get("username"),
        password=spec.get("password"),
        path=spec.get("unix_socket_path") or spec.get("path"),
        ssl_context=spec.get("ssl_context") or (_ssl_context(spec, where) if ssl_on else None),
        connect_timeout=_timeout(spec.get("socket_connect_timeout"), where),
    )


def _sentinel_spec(spec: dict[str, Any], where: str) -> HostSpec:
    sentinels = spec.pop("sentinels", None)
    master = spec.pop("master_name", None)
    if not master or not isinstance(master, str):
        raise _bad(f"a Sentinel host needs 'master_name' ({where})",
                   "add 'master_name': 'mymaster'")
    if (isinstance(sentinels, (str, bytes)) or not isinstance(sentinels, Sequence)
            or not sentinels
            or not all(isinstance(s, (tuple, list)) and len(s) == 2 for s in sentinels)):
        raise _bad(f"'sentinels' must be a list of (host, port) pairs, got {sentinels!r}")
    pairs = tuple((str(h), _port(p, where)) for h, p in sentinels)
    login = spec.pop("sentinel_kwargs", None) or {}
    if not isinstance(login, Mapping):
        raise _bad(f"'sentinel_kwargs' in {where} is not a dict",
                   "give e.g. {'password': 'sentinel-password'}")
    _check_keys(login, f"sentinel_kwargs of {where}",
                HONOURED_KEYS - {"address", "sentinels", "master_name", "sentinel_kwargs"})
    base = _from_dict(spec)
    return HostSpec(
        db=base.db, username=base.username, password=base.password,
        ssl_context=base.ssl_context, sentinels=pairs, master_name=master,
        sentinel_kwargs=dict(login), connect_timeout=base.connect_timeout,
        sentinel_login=_from_dict(login),
    )


def parse_hosts(hosts: Any) -> tuple[HostSpec, ...]:
    """Every form channels_redis accepts for ``hosts``, as HostSpec objects."""
    if hosts is None or (isinstance(hosts, Sequence) and not isinstance(hosts, (str, bytes))
                         and len(hosts) == 0):
        return (_from_url(DEFAULT_URL, {}),)
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise _bad(f"expected a list of hosts, got {type(hosts).__name__} {hosts!r}")
    result = []
    for item in hosts:
        if isinstance(item, str):
            result.append(_from_url(item, {}))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            if not isinstance(item[0], str) or not item[0]:
                raise _bad(f"the host in {item!r} is not a host name")
            result.append(HostSpec(host=item[0], port=_port(item[1], repr(item))))
        elif isinstance(item, Mapping):
            result.append(_from_dict(item))
        else:
            raise _bad(f"cannot read host {item!r}")
    return tuple(result)
