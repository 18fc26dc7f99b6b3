"""The entry points' one logging set-up (``logs.py``), in memory: it adds a handler only where
logging is not configured, and names ``--log-level`` for a level ``logging`` does not know."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from channels_distributed.exceptions import ConfigurationError
from channels_distributed.logs import LOG_FORMAT, setup_logging

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
