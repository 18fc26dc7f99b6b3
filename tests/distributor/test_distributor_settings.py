"""The distributor's settings: a bad one fails at construction, naming the setting and the fix."""

from __future__ import annotations

import pytest

from channels_distributed.distributor import create_path_distributor
from channels_distributed.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("options", "setting", "hint"),
    [
        ({"worker_timeout": 0}, "worker_timeout", "expected a positive number, got 0"),
        ({"window": True}, "window", "expected a positive whole number, got True"),
        ({"inline_body": 1.5}, "inline_body", "expected a positive whole number"),
        ({"no_worker_status": 200}, "no_worker_status", "HTTP error status"),
        # A typo was a TypeError's text under the setting "options".
        ({"worker_timout": 3}, "worker_timout", "worker_timeout"),
        ({"url": "redis://db", "host": "db"}, "url", "one way only"),
        ({"url": "redis://db", "db": 1}, "db", "in the URL"),
        ({"port": "x"}, "port", "port number"),
        ({"prefix": "a b"}, "prefix", "plain name"),
    ],
)
def test_bad_distributor_settings_name_the_setting(options, setting, hint) -> None:

    with pytest.raises(ConfigurationError) as caught:
        create_path_distributor(routes={"/": "k"}, **options)
    assert caught.value.setting == setting
    assert hint in str(caught.value)
