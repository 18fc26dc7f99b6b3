"""``manage.py check --deploy`` runs the Redis preflight on the project's Redis (the test
project's settings, pointed at real servers): nothing on a healthy one, each finding as a
check message with its id and fix, never without ``--deploy``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from helpers import unique_prefix

from channels_distributed.embedded import RedisServer
from channels_distributed.transport.refusals import LAYER_ACL, WORKER_ACL

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)

OUR_LAYER = "channels_distributed.layer.RedisChannelLayer"


def _layers(url: str, prefix: str, **config: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": OUR_LAYER,
                        "CONFIG": {"hosts": [url], "prefix": prefix, **config}}}


def _deploy_checks() -> list[checks.CheckMessage]:
    return checks.run_checks(include_deployment_checks=True, tags=["redis"])


@pytest.fixture
def layer_only() -> Iterator[None]:
    """The project without CHANNELS_DISTRIBUTED: a project using the channel layer only."""
    from django.conf import settings

    with override_settings():
        del settings.CHANNELS_DISTRIBUTED
        yield


def test_a_healthy_redis_passes_check_deploy(redis_single: Any) -> None:
    with override_settings(CHANNEL_LAYERS=_layers(redis_single.hosts[0], unique_prefix())):
        assert _deploy_checks() == []
        call_command("check", "--deploy", "--tag", "redis", "--fail-level", "WARNING")


def test_the_preflight_runs_with_deploy_only() -> None:
    # Nothing listens on port 1: only a check that connects can find that out.
    with override_settings(CHANNEL_LAYERS=_layers("redis://127.0.0.1:1/0", "p")):
        assert checks.run_checks(tags=["redis"]) == []
        (error,) = _deploy_checks()
        with pytest.raises(SystemCheckError, match=r"channels_distributed\.E014"):
            call_command("check", "--deploy", "--tag", "redis")
    assert error.level == checks.ERROR
    assert error.msg.startswith("redis://127.0.0.1:1/0: cannot connect or log in")
    assert "check that the server runs" in error.hint
    # Deploying from a machine that cannot reach the production Redis: silenced.
    with override_settings(CHANNEL_LAYERS=_layers("redis://127.0.0.1:1/0", "p"),
                           SILENCED_SYSTEM_CHECKS=["channels_distributed.E014"]):
        call_command("check", "--deploy", "--tag", "redis")


def test_an_evicting_policy_is_a_warning_of_check_deploy(redis_fresh: RedisServer) -> None:
    redis_fresh.command("CONFIG", "SET", "maxmemory", "100mb")
    redis_fresh.command("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    try:
        with override_settings(CHANNEL_LAYERS=_layers(redis_fresh.url, unique_prefix())):
            (warning,) = _deploy_checks()
            call_command("check", "--deploy", "--tag", "redis")  # warnings do not fail it
    finally:
        redis_fresh.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    assert warning.id == "channels_distributed.W010"
    assert warning.level == checks.WARNING
    assert "maxmemory-policy volatile-lru" in warning.msg
    assert warning.hint.startswith("Set maxmemory-policy to noeviction")


def test_the_workers_acl_is_checked_with_channels_distributed(redis_fresh: RedisServer) -> None:
    """With CHANNELS_DISTRIBUTED the edge's and the workers' commands are needed: a user with
    the channel layer's ACL only is refused BLMOVE and the rest."""
    prefix = unique_prefix()
    rules = LAYER_ACL.replace("~asgi:", f"~{prefix}:").split()
    redis_fresh.command("ACL", "SETUSER", "app", "reset", "on", ">pw", *rules, "+info", "+time")
    url = f"redis://app:pw@127.0.0.1:{redis_fresh.port}/0"
    with override_settings(CHANNEL_LAYERS=_layers(url, prefix)):
        (error,) = _deploy_checks()
    assert error.id == "channels_distributed.E012"
    assert error.msg.startswith(f"{redis_fresh.url}: Redis user 'app' may not use BLMOVE, LMOVE")
    assert error.hint.startswith(f"ACL SETUSER app &{prefix}:presence:* +blmove +lmove")
    assert WORKER_ACL.replace("&asgi:", f"&{prefix}:") in error.hint


def test_a_layer_only_project_needs_the_layers_acl_only(
        redis_fresh: RedisServer, layer_only: None) -> None:
    prefix = unique_prefix()
    rules = LAYER_ACL.replace("~asgi:", f"~{prefix}:").split()
    redis_fresh.command("ACL", "SETUSER", "app", "reset", "on", ">pw", *rules, "+info", "+time")
    url = f"redis://app:pw@127.0.0.1:{redis_fresh.port}/0"
    with override_settings(CHANNEL_LAYERS=_layers(url, prefix)):
        assert _deploy_checks() == []


def test_the_skew_window_is_worker_timeout_else_the_layers_expiry(redis_single: Any) -> None:
    """Deadlines reach WORKER_TIMEOUT ahead for the edge and the workers; without
    CHANNELS_DISTRIBUTED, the layer's messages expire ``expiry`` after they were sent (by the
    sender's clock, checked by the receiver's): that is the window skew is judged against."""
    from django.conf import settings

    from channels_distributed.django.checks import _redis_targets

    layers = _layers(redis_single.hosts[0], "p", expiry=20)
    with override_settings(CHANNEL_LAYERS=layers):
        (edge,) = _redis_targets()
        del settings.CHANNELS_DISTRIBUTED
        (layer,) = _redis_targets()
    assert edge[1:] == (True, 5.0)  # the test project's WORKER_TIMEOUT
    assert layer[1:] == (False, 20.0)
    assert edge[0].hosts == layer[0].hosts and edge[0].prefix == layer[0].prefix == "p"


def test_settings_with_mistakes_are_left_to_the_other_checks() -> None:
    # (Redis nowhere: a preflight run anyway would say E014.)
    with override_settings(CHANNELS_DISTRIBUTED={"ROUTES": "^/"},
                           CHANNEL_LAYERS=_layers("redis://127.0.0.1:1/0", "p")):
        assert _deploy_checks() == []
