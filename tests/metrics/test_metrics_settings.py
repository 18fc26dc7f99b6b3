"""Switching metrics on: bad settings and environments fail at start-up, naming the setting and
the fix; the gunicorn hooks. In memory: the switch's state is put back after each test."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from channels_distributed import metrics
from channels_distributed.cli import _parser
from channels_distributed.conf import NodeConfig
from channels_distributed.distributor import create_path_distributor
from channels_distributed.exceptions import ConfigurationError
from channels_distributed.metrics import hooks


@pytest.fixture(autouse=True)
def switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch as the suite has it (off), restored after the test."""
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(metrics, "LAYER", None)
    monkeypatch.setattr(metrics, "_edge", False)
    monkeypatch.setattr(metrics, "_processes", 1)


@pytest.mark.parametrize(("options", "setting", "hint"), [
    ({"metrics_path": "metrics"}, "metrics_path", "expected a path starting with '/'"),
    ({"metrics_path": 1}, "metrics_path", "metrics_path='/-/metrics', or None"),
    ({"metrics_path": "/-/x", "live_path": "/-/x"}, "metrics_path", "is live_path already"),
])
def test_bad_metrics_paths(options: dict[str, object], setting: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_path_distributor(routes={"/": "k"}, **options)
    assert caught.value.setting == setting
    assert hint in str(caught.value)
    assert metrics.LAYER is None


def test_bad_metrics_bind() -> None:
    with pytest.raises(ConfigurationError, match=r"--metrics-bind: expected HOST:PORT, got "):
        NodeConfig.from_options(key="k", metrics_bind="8001")


def test_both_worker_commands_take_metrics_bind() -> None:
    args = _parser().parse_args(["worker", "k", "--app", "m:a", "--metrics-bind", "0.0.0.0:9"])
    assert args.metrics_bind == "0.0.0.0:9"
    from django.core.management import load_command_class

    command = load_command_class("channels_distributed", "runworker")
    parsed = command.create_parser("manage.py", "runworker").parse_args(
        ["k", "--metrics-bind", "127.0.0.1:9"])
    assert parsed.metrics_bind == "127.0.0.1:9"


def test_without_prometheus_client(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "prometheus_client" else real(name, *a))
    with pytest.raises(ConfigurationError) as caught:
        create_path_distributor(routes={"/": "k"}, metrics_path="/-/metrics")
    assert caught.value.setting == "metrics_path"
    assert "pip install 'channels-distributed[metrics]'" in str(caught.value)
    assert metrics.LAYER is None


@pytest.mark.parametrize("folder", ["", "missing"])
def test_a_multiprocess_directory_that_is_not_one(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, folder: str) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", folder and str(tmp_path / folder))
    with pytest.raises(ConfigurationError) as caught:
        metrics.switch_on("metrics_path")
    assert caught.value.setting == "PROMETHEUS_MULTIPROC_DIR"
    assert "is not a directory this process can write" in str(caught.value)
    assert metrics.LAYER is None


def test_a_worker_refuses_a_multiprocess_directory(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        metrics.switch_on("--metrics-bind", summed=False)
    assert "unset PROMETHEUS_MULTIPROC_DIR for workers" in str(caught.value)
    assert metrics.LAYER is None


def test_several_processes_need_the_multiprocess_directory(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    metrics.serving_processes(4)  # no edge with metrics in this process: nothing to sum
    with pytest.raises(ConfigurationError) as caught:
        metrics.edge_metrics_on()
    assert caught.value.setting == "metrics_path"
    assert "from 4 gunicorn worker processes, but PROMETHEUS_MULTIPROC_DIR" in str(caught.value)
    metrics.serving_processes(1)  # one process answers for itself
    metrics.edge_metrics_on()
    with pytest.raises(ConfigurationError):
        metrics.serving_processes(2)  # gunicorn says so after the application was loaded
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics.serving_processes(2)


def test_gunicorn_hooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = ["counter_7.db", "gauge_livesum_7.db", "gauge_livesum_8.db", "notes.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    hooks.child_exit(None, SimpleNamespace(pid=7))  # not set: nothing is touched
    hooks.on_starting(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    hooks.child_exit(None, SimpleNamespace(pid=7))  # its open connections go; its totals stay
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_7.db", "gauge_livesum_8.db", "notes.txt"]
    hooks.on_starting(None)  # a new run: what the last one left is forgotten
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_django_settings_switch_metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings
    from django.test import override_settings

    from channels_distributed.django import get_edge_application
    from channels_distributed.django.worker import WorkerOptions, make_node
    from channels_distributed.metrics import edge as edge_metrics

    monkeypatch.setattr(edge_metrics, "_meter", None)
    ours = {**settings.CHANNELS_DISTRIBUTED, "METRICS_PATH": "/-/metrics"}
    with override_settings(CHANNELS_DISTRIBUTED=ours):
        edge = get_edge_application()
    assert edge.config.metrics_path == "/-/metrics"
    assert "/-/metrics" in edge._own and metrics.LAYER is not None
    node, _ = make_node(settings, WorkerOptions(("api",), metrics_bind="127.0.0.1:0"))
    assert node.config.metrics_bind == "127.0.0.1:0" and node._meter is not None
