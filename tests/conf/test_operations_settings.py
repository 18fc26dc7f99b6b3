"""The operations settings, checked at start-up: the edge's probe paths and log interval, the
worker's health bind (each error names the setting and the fix)."""

from __future__ import annotations

import pytest

from channels_distributed.conf import DistributorConfig, NodeConfig
from channels_distributed.exceptions import ConfigurationError

ROUTES = {"^/": "site"}


def test_the_probes_are_off_by_default_and_take_paths() -> None:
    config = DistributorConfig.from_options(ROUTES)
    assert config.live_path is None and config.ready_path is None
    assert config.log_interval == 10.0
    config = DistributorConfig.from_options(ROUTES, live_path="/-/live", ready_path="/-/ready")
    assert (config.live_path, config.ready_path) == ("/-/live", "/-/ready")


@pytest.mark.parametrize("name,value", [("live_path", "healthz"), ("ready_path", 5),
                                        ("log_interval", 0), ("log_interval", -1.0)])
def test_a_bad_operations_setting_is_named(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DistributorConfig.from_options(ROUTES, **{name: value})
    assert caught.value.setting == name


def test_a_worker_health_bind_is_checked_at_start_up() -> None:
    assert NodeConfig.from_options(key="k", health_bind="0.0.0.0:8001").health_bind == \
        "0.0.0.0:8001"
    with pytest.raises(ConfigurationError) as caught:
        NodeConfig.from_options(key="k", health_bind="8001")
    assert caught.value.setting == "--health-bind"
