"""The one logging set-up of the entry points (``channels-distributed worker``, ``manage.py
runworker``, gunicorn's ``ASGIWorker``). The library itself never adds a handler: only an entry
point does, and only where logging is not configured otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .exceptions import ConfigurationError

__all__ = ["LOG_FORMAT", "setup_logging"]

#: The console commands' lines: ``2026-01-01 12:00:00,123 [pid] [LEVEL] logger: message``.
LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def setup_logging(level: str | int, name: str = "",
                  handlers: Iterable[logging.Handler] | None = None) -> bool:
    """Give the records of logger ``name`` (the root logger by default) ``handlers`` (by
    default one writing ``LOG_FORMAT`` lines to stderr) and ``level``, unless logging is
    configured already: the root logger or that logger has a handler (a ``LOGGING`` setting,
    gunicorn's ``--log-config*``). Says whether it did; a level unknown to ``logging`` is a
    ConfigurationError naming ``--log-level``."""
    target = logging.getLogger(name)
    if logging.getLogger().handlers or target.handlers:
        return False
    try:
        target.setLevel(level.upper() if isinstance(level, str) else level)
    except ValueError:
        raise ConfigurationError("--log-level", f"unknown level {level!r}",
                                 "use debug, info, warning, error or critical") from None
    if handlers is None:
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers = (stderr,)
    for handler in handlers:
        target.addHandler(handler)
    return True
