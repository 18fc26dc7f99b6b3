"""The HTTP/WebSocket server's settings (the gunicorn ``ASGIWorker``'s), checked once into a
frozen ``ServerConfig``, and read from gunicorn's configuration by ``ServerConfig.from_gunicorn``.

gunicorn settings are used where gunicorn has one (``keepalive``, ``limit_request_*``,
``forwarded_allow_ips``, ``secure_scheme_headers``, ``proxy_protocol``, ``root_path``,
``websocket_max_message_size``, ``asgi_lifespan``, ...). Settings gunicorn does not have are read
from ``CD_*`` environment variables (``gunicorn -e CD_INTERFACE=legacy``) or from a worker
subclass's ``server_settings`` dict. ``from_gunicorn`` is the one place that maps them; a
setting gunicorn leaves unset (or an older gunicorn lacks) takes its field's default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError
from ..loop import GC_THRESHOLD
from .checks import choice, field_defaults, positive
from .node import INTERFACES, LIFESPAN_MODES

__all__ = ["AddressFilter", "ServerConfig", "extra_settings", "setting"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddressFilter:
    """A set of trusted peer addresses: ``*``, exact IPs and CIDR networks."""

    allow_all: bool = False
    exact: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, setting: str, value: Any) -> AddressFilter:
        items = value.split(",") if isinstance(value, str) else list(value or ())
        items = [str(item).strip() for item in items if str(item).strip()]
        if "*" in items:
            return cls(allow_all=True)
        exact, networks = set(), []
        for item in items:
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigurationError(
                    setting,
                    f"{item!r} is not an IP address or network",
                    "use addresses such as 127.0.0.1, networks such as 10.0.0.0/8, or *",
                ) from None
            if network.num_addresses == 1:
                exact.add(str(network.network_address))
            else:
                networks.append(network)
        return cls(exact=frozenset(exact), networks=tuple(networks))

    def allows(self, host: str | None) -> bool:
        if self.allow_all or host is None:  # UNIX sockets carry no address: trusted
            return True
        if host in self.exact:
            return True
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class ServerConfig:
    """Every knob of the HTTP/WebSocket server. Times are seconds, sizes bytes (0 = no limit)."""

    interface: str = "auto"
    root_path: str = ""
    keepalive: float = 2.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    limit_request_line: int = 4094
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    max_drain: int = 65536
    forwarded_allow: AddressFilter = field(
        default_factory=lambda: AddressFilter.parse("", "127.0.0.1,::1")
    )
    secure_scheme_headers: tuple[tuple[bytes, bytes], ...] = (
        (b"x-forwarded-protocol", b"ssl"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-ssl", b"on"),
    )
    proxy_protocol: str = "off"
    proxy_allow: AddressFilter = field(
        default_factory=lambda: AddressFilter.parse("", "127.0.0.1,::1")
    )
    ws_max_message_size: int = 16 * 1024 * 1024
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    ws_per_message_deflate: bool = True
    # zlib window of permessage-deflate, both ways (2**bits bytes; 9-15): with it, deflate adds
    # about 45 KiB to an idle connection, where zlib's default 15 added about 105 KiB.
    ws_deflate_window_bits: int = 12
    legacy_timeout: float = 60.0
    lifespan: str = "auto"
    lifespan_timeout: float = 30.0
    graceful_timeout: float = 30.0
    worker_connections: int = 1000
    server_header: str = "channels-distributed"
    high_water: int = 65536
    header_map: str = "drop"
    # The cyclic garbage collector's young-generation threshold while the process serves (0
    # keeps Python's 700): loop.serving_gc, whose default says why.
    gc_threshold: int = GC_THRESHOLD

    def __post_init__(self) -> None:
        choice("interface", self.interface, INTERFACES)
        choice("lifespan", self.lifespan, LIFESPAN_MODES)
        choice("proxy_protocol", self.proxy_protocol, ("off", "v1", "v2", "auto"))
        choice("header_map", self.header_map, ("drop", "refuse", "dangerous"))
        for name in (
            "keepalive",
            "header_timeout",
            "body_timeout",
            "legacy_timeout",
            "graceful_timeout",
            "lifespan_timeout",
        ):
            positive(name, getattr(self, name), "set a positive number of seconds")
        for name in (
            "limit_request_line",
            "limit_request_fields",
            "limit_request_field_size",
            "max_drain",
            "ws_max_message_size",
            "ws_ping_interval",
            "ws_ping_timeout",
            "gc_threshold",
        ):
            positive(name, getattr(self, name), "use 0 to disable the limit", zero=True)
        if not isinstance(self.ws_deflate_window_bits, int) or not (
            9 <= self.ws_deflate_window_bits <= 15
        ):
            raise ConfigurationError(
                "ws_deflate_window_bits",
                f"{self.ws_deflate_window_bits!r} is not a zlib window size",
                "use 9 (least memory) to 15 (best compression), e.g. CD_WS_DEFLATE_WINDOW_BITS=12",
            )
        positive("worker_connections", self.worker_connections,
                 "set --worker-connections to a positive number", integer=True)
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ConfigurationError(
                "root_path",
                f"{self.root_path!r} is not a mount path",
                "use a path that starts with / and has no trailing /, e.g. /api",
            )

    @property
    def max_head(self) -> int:
        """Upper bound of the bytes of one request head (request line + header block)."""
        line = self.limit_request_line or 65536
        size = self.limit_request_field_size or 65536
        count = self.limit_request_fields or 1000
        return line + 4 + count * (size + 4) + 4

    @classmethod
    def from_gunicorn(cls, cfg: Any, overrides: Mapping[str, Any] | None = None,
                      environ: Mapping[str, str] | None = None) -> ServerConfig:
        """gunicorn's ``cfg``, a worker class's ``server_settings`` (``overrides``) and the
        ``CD_*`` variables of ``environ`` (the process's by default); raise on a bad value."""
        return cls(**_from_gunicorn(cfg, overrides or {},
                                    os.environ if environ is None else environ))


# name -> converter for the CD_* environment variables and ``server_settings``.
_EXTRA: dict[str, type] = {
    "interface": str,
    "root_path": str,  # gunicorn has --root-path from 24.0 on; CD_ROOT_PATH works on any
    "header_timeout": float,
    "body_timeout": float,
    "max_drain": int,
    "ws_ping_interval": float,
    "ws_ping_timeout": float,
    "ws_per_message_deflate": bool,
    "ws_deflate_window_bits": int,
    "ws_max_message_size": int,
    "legacy_timeout": float,
    "lifespan_timeout": float,
    "server_header": str,
    "gc_threshold": int,
}


def _convert(name: str, raw: Any) -> Any:
    kind = _EXTRA[name]
    if kind is bool and isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigurationError(name, f"{raw!r} is not a boolean", "use true or false")
        return lowered in ("1", "true", "yes", "on")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(
            name,
            f"{raw!r} is not a valid {kind.__name__}",
            f"set CD_{name.upper()} to a {kind.__name__}",
        ) from None


def extra_settings(overrides: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings gunicorn lacks: ``overrides`` (a worker's ``server_settings``), then ``CD_*``."""
    unknown = set(overrides) - set(_EXTRA)
    if unknown:
        raise ConfigurationError(
            "server_settings", f"unknown keys {sorted(unknown)}", f"use keys among {sorted(_EXTRA)}"
        )
    values = {name: _convert(name, value) for name, value in overrides.items()}
    for name in _EXTRA:
        raw = environ.get(f"CD_{name.upper()}")
        if raw is not None:
            values[name] = _convert(name, raw)
    return values


def _scheme_headers(value: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in value.items())


def _clamp(value: int, maximum: int, zero: int) -> int:
    if value == 0:
        return zero
    if value < 0 or (maximum and value >= maximum):
        return maximum
    return value


def setting(cfg: Any, name: str, default: Any) -> Any:
    """gunicorn's value of ``name``, or ``default`` on a release without that setting.

    ``cfg.<name>`` raises AttributeError for a setting the installed gunicorn does not know:
    ``asgi_loop``, ``asgi_lifespan``, ``root_path`` and ``websocket_max_message_size`` came with
    gunicorn 24-27, and 23.0 is still what Debian and many pins ship.
    """
    return cfg.settings[name].get() if name in cfg.settings else default


def _from_gunicorn(cfg: Any, overrides: Mapping[str, Any], environ: Mapping[str, str]
                   ) -> dict[str, Any]:
    """``ServerConfig``'s settings from gunicorn's ``cfg`` (+ CD_* settings)."""
    default = field_defaults(ServerConfig)
    proxy = setting(cfg, "proxy_protocol", False)
    proxy_mode = (
        {True: "auto", False: "off"}.get(proxy, proxy) if isinstance(proxy, bool) else proxy
    )
    values: dict[str, Any] = {
        "root_path": setting(cfg, "root_path", None) or default["root_path"],
        "keepalive": float(cfg.keepalive) or default["keepalive"],
        # gunicorn's own clamps (gunicorn/http/message.py): line < 8190 (0 = none),
        # fields 0 or > 32768 -> 32768, field size 0 -> 8190.
        "limit_request_line": _clamp(cfg.limit_request_line, 8190, 0),
        "limit_request_fields": _clamp(cfg.limit_request_fields, 32768, 32768),
        "limit_request_field_size": _clamp(cfg.limit_request_field_size, 0, 8190),
        "forwarded_allow": AddressFilter.parse("forwarded_allow_ips", cfg.forwarded_allow_ips),
        "secure_scheme_headers": _scheme_headers(cfg.secure_scheme_headers),
        "proxy_protocol": str(proxy_mode or default["proxy_protocol"]),
        "proxy_allow": AddressFilter.parse("proxy_allow_ips", cfg.proxy_allow_ips),
        "ws_max_message_size": setting(cfg, "websocket_max_message_size",
                                       default["ws_max_message_size"]),
        "lifespan": setting(cfg, "asgi_lifespan", default["lifespan"]),
        "graceful_timeout": float(cfg.graceful_timeout) or default["graceful_timeout"],
        "worker_connections": cfg.worker_connections,
        "header_map": setting(cfg, "header_map", default["header_map"]),
    }
    values.update(extra_settings(overrides, environ))
    return values
