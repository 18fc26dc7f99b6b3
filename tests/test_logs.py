"""The entry points' one logging set-up (``logs.py``), in memory: it adds a handler only where
logging is not configured, and names ``--log-level`` for a level ``logging`` does not know; JSON
lines; lines limited in rate."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.logs import (
    LOG_FORMAT,
    LOG_FORMAT_ENV,
    JsonFormatter,
    Throttle,
    setup_logging,
)

NAME = "channels_distributed.tests_logs"


@pytest.fixture
def clean() -> Iterator[logging.Logger]:
    """A logger of its own, left as it was found."""
    target = logging.getLogger(NAME)
    try:
        yield target
    finally:
        target.handlers.clear()
        target.setLevel(logging.NOTSET)


@contextmanager
def _unconfigured() -> Iterator[None]:
    """A root logger without handlers (pytest puts its own there for each phase of a test)."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:] = handlers


def test_where_nothing_is_configured_it_adds_a_stderr_handler(clean: logging.Logger) -> None:
    with _unconfigured():
        assert setup_logging("debug", NAME)
    (handler,) = clean.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.formatter is not None and handler.formatter._fmt == LOG_FORMAT
    assert clean.level == logging.DEBUG
    with _unconfigured():
        assert not setup_logging("info", NAME)  # now configured: left as it is
    assert len(clean.handlers) == 1 and clean.level == logging.DEBUG


def test_given_handlers_are_used_and_a_root_handler_wins(clean: logging.Logger) -> None:
    given = logging.NullHandler()
    with _unconfigured():
        assert setup_logging(logging.WARNING, NAME, [given])
    assert clean.handlers == [given] and clean.level == logging.WARNING
    clean.handlers.clear()
    with _unconfigured():
        logging.getLogger().addHandler(logging.NullHandler())  # LOGGING, gunicorn --log-config
        assert not setup_logging("info", NAME)
    assert clean.handlers == []


def test_an_unknown_level_names_the_option(clean: logging.Logger) -> None:
    with _unconfigured(), pytest.raises(ConfigurationError) as caught:
        setup_logging("loud", NAME)
    assert caught.value.setting == "--log-level" and "debug, info" in caught.value.fix
    assert clean.handlers == []


def test_json_lines_carry_time_level_logger_pid_and_the_packages_fields(
        clean: logging.Logger) -> None:
    stream = io.StringIO()
    with _unconfigured():
        assert setup_logging("info", NAME, [logging.StreamHandler(stream)], log_format="json")
    clean.warning("busy on route key %s", "api", extra={"route": "api", "cause": "busy"})
    try:
        raise ValueError("boom")
    except ValueError:
        clean.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "busy on route key api" and first["level"] == "WARNING"
    assert first["logger"] == NAME and first["pid"] == os.getpid()
    assert first["route"] == "api" and first["cause"] == "busy"
    assert first["time"].endswith("Z")
    assert "ValueError: boom" in second["exception"]


def test_json_through_a_given_handler_leaves_its_own_format_to_its_own_records(
        clean: logging.Logger) -> None:
    # gunicorn's error log: the package's lines become JSON, gunicorn's keep its format.
    stream = io.StringIO()
    theirs = logging.StreamHandler(stream)
    theirs.setFormatter(logging.Formatter("THEIRS %(message)s"))
    with _unconfigured():
        assert setup_logging("info", NAME, [theirs], log_format="json")
    clean.info("ours")
    logging.getLogger("gunicorn.tests_logs").addHandler(theirs)
    try:
        logging.getLogger("gunicorn.tests_logs").warning("theirs")
    finally:
        logging.getLogger("gunicorn.tests_logs").removeHandler(theirs)
    ours, other = stream.getvalue().splitlines()
    assert json.loads(ours)["message"] == "ours" and other == "THEIRS theirs"


def test_the_format_comes_from_the_environment_and_a_wrong_one_is_named(
        clean: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    with _unconfigured(), pytest.raises(ConfigurationError) as caught:
        setup_logging("info", NAME)
    assert caught.value.setting == LOG_FORMAT_ENV and "text or json" in caught.value.fix
    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    with _unconfigured():
        assert setup_logging("info", NAME)
    (handler,) = clean.handlers
    assert isinstance(handler.formatter, JsonFormatter)


def test_a_throttle_writes_one_line_per_cause_and_key_per_interval_with_the_count(
        clean: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    throttle = Throttle(clean, 10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, NAME):
        for _ in range(5):
            throttle.log(logging.WARNING, "busy", "api", "busy on %s", "api")
        throttle.log(logging.WARNING, "no_worker", "api", "none on %s", "api")
        throttle.log(logging.WARNING, "busy", "site", "busy on %s", "site")
        now[0] += 10.0
        throttle.log(logging.WARNING, "busy", "api", "busy on %s", "api")
    assert [r.getMessage() for r in caplog.records] == [
        "busy on api", "none on api", "busy on site",
        "busy on api (and 4 more like it in the last 10 s)"]
    assert caplog.records[-1].suppressed == 4  # type: ignore[attr-defined]
