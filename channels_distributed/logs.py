"""The one logging set-up of the entry points (``channels-distributed worker``, ``manage.py
runworker``, gunicorn's ``ASGIWorker``), JSON log lines, and log lines limited in rate.

The library itself never adds a handler: only an entry point does, and only where logging is not
configured otherwise. ``CHANNELS_DISTRIBUTED_LOG_FORMAT=json`` (or ``--log-format json``) makes
each of the package's lines one JSON object (``JsonFormatter``), for log shippers.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from .exceptions import ConfigurationError

__all__ = ["LOG_FORMAT", "LOG_FORMATS", "LOG_FORMAT_ENV", "JsonFormatter", "Throttle",
           "setup_logging"]

#: The console commands' lines: ``2026-01-01 12:00:00,123 [pid] [LEVEL] logger: message``.
LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
LOG_FORMAT_ENV = "CHANNELS_DISTRIBUTED_LOG_FORMAT"
# Attributes a record may carry (``extra=``) that a JSON line includes.
_FIELDS = ("route", "cause", "count", "suppressed", "status", "process_id")


def setup_logging(level: str | int, name: str = "",
                  handlers: Iterable[logging.Handler] | None = None,
                  log_format: str | None = None) -> bool:
    """Give the records of logger ``name`` (the root logger by default) ``handlers`` (by
    default one writing ``LOG_FORMAT`` lines to stderr) and ``level``, unless logging is
    configured already: the root logger or that logger has a handler (a ``LOGGING`` setting,
    gunicorn's ``--log-config*``). Says whether it did; a level unknown to ``logging`` is a
    ConfigurationError naming ``--log-level``. ``log_format`` (else ``$LOG_FORMAT_ENV``, else
    text): with ``json``, the lines written through ``handlers`` are JSON objects."""
    chosen = log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
    if chosen not in LOG_FORMATS:
        raise ConfigurationError("--log-format" if log_format else LOG_FORMAT_ENV,
                                 f"unknown log format {chosen!r}", "use text or json")
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
        stderr.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(LOG_FORMAT))
        handlers = (stderr,)
    elif chosen == "json":
        handlers = [_JsonThrough(handler) for handler in handlers]
    for handler in handlers:
        target.addHandler(handler)
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, pid, message, the
    exception if any, and the fields the package adds (route, cause, count...)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "pid": record.process,
            "message": record.getMessage()}
        for name in _FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _JsonThrough(logging.Handler):
    """Writes JSON lines to another handler's stream (gunicorn's error log: reopened on USR1,
    so its stream is looked up for each line), leaving that handler's own format to its own
    records."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(target.level)
        self.target = target
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        stream = getattr(self.target, "stream", None)
        if stream is None:  # not a stream handler (syslog...): its own format then
            self.target.handle(record)
            return
        try:
            line = self.format(record)
            self.target.acquire()
            try:
                stream.write(line + "\n")
                stream.flush()
            finally:
                self.target.release()
        except Exception:
            self.handleError(record)


class Throttle:
    """At most one line per (cause, key) every ``interval`` seconds, saying how many like it
    were not written: an overloaded route would otherwise log every request it refuses."""

    def __init__(self, logger: logging.Logger, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # last line's time, skipped

    def log(self, level: int, cause: str, key: str, message: str, *args: object) -> None:
        now = self._clock()
        last, skipped = self._seen.get((cause, key), (-self.interval, 0))
        if now - last < self.interval:
            self._seen[(cause, key)] = (last, skipped + 1)
            return
        if len(self._seen) > 10_000:  # route templates can expand to many keys: bounded
            self._seen.clear()
        self._seen[(cause, key)] = (now, 0)
        if skipped:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, skipped, now - last)
        self.logger.log(level, message, *args,
                        extra={"route": key, "cause": cause, "suppressed": skipped})
