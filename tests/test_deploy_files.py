"""deploy/ (systemd units, Kubernetes manifests, a Compose try-out) and docs/operations.rst say
what they run, and what they say holds: every command and flag exists (tests/deploy_commands.py
checks each line against the real parsers), the YAML parses into the expected kinds, the waits
before a SIGKILL are longer than the drains they cover, the probes ask the ports and paths the
processes answer, the autoscalers read the route they scale, and the units pass
``systemd-analyze verify``. Nothing here is deployed: Kubernetes and Compose are checked by
this lint only (docs/operations.rst says so).
"""

from __future__ import annotations

import ast
import re
import runpy
import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from channels_distributed.protocol.keys import DistKeys
from tests.deploy_commands import (
    DEPLOY,
    OPERATIONS,
    ROOT,
    SYSTEMD,
    Command,
    check,
    compose_commands,
    containers,
    documented_commands,
    kubernetes_commands,
    systemd_commands,
    unit_entries,
)

KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose"
#: Each manifest and the kinds it holds, in order; a new manifest is added here.
KINDS = {
    "config.yaml": ["ConfigMap", "Secret"],
    "edge.yaml": ["Deployment", "Service"],
    "worker-api.yaml": ["Deployment"],
    "worker-site.yaml": ["Deployment"],
    "status.yaml": ["Deployment", "Service"],
    "monitoring.yaml": ["ServiceMonitor", "PodMonitor", "PodMonitor", "PrometheusRule"],
    "keda-saturation.yaml": ["ScaledObject"],
    "keda-redis-list.yaml": ["ScaledObject", "TriggerAuthentication"],
    "hpa-saturation.yaml": ["HorizontalPodAutoscaler"],
    "check-cronjob.yaml": ["CronJob"],
}
API_VERSIONS = {
    "ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Deployment": "apps/v1",
    "CronJob": "batch/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
    "ScaledObject": "keda.sh/v1alpha1", "TriggerAuthentication": "keda.sh/v1alpha1",
    "ServiceMonitor": "monitoring.coreos.com/v1", "PodMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}
#: The route key the autoscaling examples scale, and the metric they read (the status server's).
ROUTE = "api"
SATURATION = f'channels_distributed_route_saturation{{route="{ROUTE}"}}'
#: The reference pages of the status, the status server and the metrics.
REFERENCES = ("status.rst", "status-page.rst", "metrics.rst")


def _manifests() -> dict[str, list[Mapping[str, Any]]]:
    return {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
            for path in sorted(KUBERNETES.glob("*.yaml")) if path.name in KINDS}


MANIFESTS = _manifests()
COMPOSE_FILE = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
DOCS = OPERATIONS.read_text()
COMMANDS = [*systemd_commands(), *kubernetes_commands(MANIFESTS),
            *compose_commands(COMPOSE_FILE), *documented_commands(DOCS)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.where)
def test_every_command_and_flag_exists(command: Command) -> None:
    check(command)


def test_the_files_run_the_commands_they_are_about() -> None:
    # Guards the readers: a command that slipped through them would be checked by nothing.
    checked = {check(command) for command in COMMANDS}
    assert {"gunicorn", "manage.py runworker", "manage.py prepare", "manage.py check",
            "manage.py distributed_status", "channels-distributed status",
            "channels-distributed check", "channels-distributed worker"} <= checked
    assert any("--metrics-bind" in c.argv for c in COMMANDS if "runworker" in c.argv)
    assert any("--serve" in c.argv for c in COMMANDS if "status" in c.argv)


def _flag(argv: tuple[str, ...], flag: str) -> str | None:
    for index, word in enumerate(argv):
        if word == flag:
            return argv[index + 1]
        if word.startswith(flag + "="):
            return word.partition("=")[2]
    return None


# -- YAML --------------------------------------------------------------------------------------


def test_every_manifest_parses_into_its_kinds() -> None:
    present = {path.name for path in KUBERNETES.glob("*.yaml")}
    assert present == {*KINDS, "prometheus-adapter-values.yaml"}, "register a new manifest in KINDS"
    for name, kinds in KINDS.items():
        docs = MANIFESTS[name]
        assert [doc["kind"] for doc in docs] == kinds, name
        for doc in docs:
            assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], (name, doc["kind"])
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def _all(kind: str) -> dict[str, Mapping[str, Any]]:
    return {doc["metadata"]["name"]: doc for docs in MANIFESTS.values() for doc in docs
            if doc["kind"] == kind}


def _pod_labels(deployment: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    return labels


def test_services_and_monitors_select_what_they_name() -> None:
    deployments = _all("Deployment")
    for name, service in _all("Service").items():
        selected = [d for d in deployments.values()
                    if service["spec"]["selector"].items() <= _pod_labels(d).items()]
        assert [d["metadata"]["name"] for d in selected] == [name], name
        (container,) = containers(selected[0])
        ports = {port["name"] for port in container["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports
    (status_monitor,) = _all("ServiceMonitor").values()
    status = _all("Service")["channels-distributed-status"]
    assert status_monitor["spec"]["selector"]["matchLabels"].items() <= (
        status["metadata"]["labels"].items())
    monitors = _all("PodMonitor")
    worker_monitor, edge_monitor = (monitors["channels-distributed-workers"],
                                    monitors["channels-distributed-edges"])
    wanted = worker_monitor["spec"]["selector"]["matchLabels"].items()
    workers = [d for d in deployments.values() if wanted <= _pod_labels(d).items()]
    assert sorted(d["metadata"]["name"] for d in workers) == ["worker-api", "worker-site"]
    # The edges' metrics: their METRICS_PATH on their HTTP port, summed over gunicorn's workers
    # through the directory the manifest gives them.
    wanted = edge_monitor["spec"]["selector"]["matchLabels"].items()
    (edge,) = [d for d in deployments.values() if wanted <= _pod_labels(d).items()]
    (endpoint,) = edge_monitor["spec"]["podMetricsEndpoints"]
    (container,) = containers(edge)
    assert endpoint["port"] in {port["name"] for port in container["ports"]}
    assert endpoint["path"] == "/-/metrics"
    env = {item["name"]: item["value"] for item in container["env"]}
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts
    assert _flag(tuple(container["command"]), "--config") == \
        "python:channels_distributed.metrics.hooks"
    for worker in workers:
        (container,) = containers(worker)
        metrics = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
        assert _flag(tuple(container["command"]), "--metrics-bind") == f"0.0.0.0:{metrics}"


def test_the_compose_file_holds_together() -> None:
    services = COMPOSE_FILE["services"]
    assert set(services) == {"redis", "prepare", "edge", "worker-a", "worker-b", "status",
                             "check"}
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        for volume in service.get("volumes", []):
            assert volume.partition(":")[0] in COMPOSE_FILE["volumes"], name
    # The same split as `channels-distributed demo`: worker A and B serve what it gives them.
    from channels_distributed.demo.run import WORKERS

    for letter, keys in WORKERS.items():
        argv = services[f"worker-{letter.lower()}"]["command"]
        assert argv[:2] == ["django-admin", "runworker"]
        assert tuple(argv[2:2 + len(keys)]) == keys
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert "DJANGO_SETTINGS_MODULE=tryout_settings" in dockerfile
    (package,) = re.findall(r'ARG PACKAGE="([^"]+)"', dockerfile)
    name, extras = re.fullmatch(r"([\w-]+)\[([\w,]+)\]", package).groups()  # type: ignore[union-attr]
    assert name == "channels-distributed"
    provided = set(metadata.metadata("channels-distributed").get_all("Provides-Extra") or ())
    assert set(extras.split(",")) <= provided, provided


def _tryout_settings() -> dict[str, Any]:
    return runpy.run_path(str(COMPOSE / "tryout_settings.py"))


def _distributor(settings: Mapping[str, Any]) -> Any:
    """The edge's configuration from a CHANNELS_DISTRIBUTED dict (ConfigurationError if bad)."""
    from channels_distributed.conf.distributor import DistributorConfig
    from channels_distributed.django.settings import DISTRIBUTOR_KEYS, KEYS

    assert set(settings) <= set(KEYS), set(settings) - set(KEYS)
    options = {DISTRIBUTOR_KEYS[k]: v for k, v in settings.items() if k in DISTRIBUTOR_KEYS}
    return DistributorConfig.from_options(settings["ROUTES"], **options)


def test_the_settings_shown_are_settings_of_the_package() -> None:
    tryout = _distributor(_tryout_settings()["CHANNELS_DISTRIBUTED"])
    assert (tryout.live_path, tryout.ready_path) == ("/-/live", "/-/ready")
    (shown,) = re.findall(r"^    CHANNELS_DISTRIBUTED = (\{.*?^    \})$", DOCS, re.M | re.S)
    documented = _distributor(ast.literal_eval(re.sub(r"#.*", "", shown)))
    assert (documented.live_path, documented.ready_path) == (tryout.live_path, tryout.ready_path)
    assert documented.log_interval == 10


# -- drains and probes -------------------------------------------------------------------------


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|min)?", text).groups()  # type: ignore[union-attr]
    return float(number) * (60 if unit == "min" else 1)


def _drain(argv: tuple[str, ...]) -> float:
    """How long SIGTERM may take: a worker's --grace, gunicorn's --graceful-timeout."""
    grace = _flag(argv, "--grace") or _flag(argv, "--graceful-timeout")
    assert grace is not None, f"{argv}: say how long the drain may take"
    return float(grace)


def test_systemd_waits_longer_than_the_drain() -> None:
    for unit in ("channels-distributed-edge.service", "channels-distributed-worker@.service"):
        entries = {key: value for _, key, value in unit_entries(SYSTEMD / unit)}
        starts = [c for c in systemd_commands()
                  if c.where.startswith(unit) and c.where.endswith("ExecStart")]
        assert starts, unit
        for start in starts:  # the template: once per route key's example environment
            assert _seconds(entries["TimeoutStopSec"]) > _drain(start.argv), start.where
        assert entries["KillMode"] == "mixed"
        assert entries["Restart"] == "on-failure"
        assert entries["User"] == "channels-distributed"


def test_kubernetes_waits_longer_than_the_drain() -> None:
    for name, deployment in _all("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        if name == "channels-distributed-status":
            continue  # nothing to drain: it only reads
        hook = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        pause = float(hook[1]) if hook else 0.0
        assert pod["terminationGracePeriodSeconds"] > pause + _drain(tuple(container["command"]))


def test_compose_waits_longer_than_the_drain() -> None:
    for name in ("edge", "worker-a", "worker-b"):
        service = COMPOSE_FILE["services"][name]
        wait = _seconds(service["stop_grace_period"])
        assert wait > _drain(tuple(service["command"])), name


def _probe_port(container: Mapping[str, Any], probe: str) -> tuple[str, int]:
    get = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return get["path"], ports.get(get["port"], get["port"])


def test_kubernetes_probes_ask_what_the_processes_answer() -> None:
    settings = _tryout_settings()["CHANNELS_DISTRIBUTED"]
    deployments = _all("Deployment")
    (edge,) = containers(deployments["edge"])
    port = int(_flag(tuple(edge["command"]), "--bind").rpartition(":")[2])  # type: ignore[union-attr]
    assert _probe_port(edge, "livenessProbe") == (settings["LIVE_PATH"], port)
    assert _probe_port(edge, "readinessProbe") == (settings["READY_PATH"], port)
    for name in ("worker-api", "worker-site"):
        (worker,) = containers(deployments[name])
        bind = _flag(tuple(worker["command"]), "--health-bind")
        port = int(bind.rpartition(":")[2])  # type: ignore[union-attr]
        assert _probe_port(worker, "livenessProbe") == ("/live", port)
        assert _probe_port(worker, "startupProbe") == ("/live", port)
        assert _probe_port(worker, "readinessProbe") == ("/ready", port)
        assert "lifecycle" not in worker, "SIGTERM drains a worker: no preStop hook (why: docs)"


def test_compose_healthchecks_ask_what_the_processes_answer() -> None:
    services = COMPOSE_FILE["services"]
    ready = _tryout_settings()["CHANNELS_DISTRIBUTED"]["READY_PATH"]
    edge_port = _flag(tuple(services["edge"]["command"]), "--bind").rpartition(":")[2]  # type: ignore[union-attr]
    assert f"http://127.0.0.1:{edge_port}{ready}" in services["edge"]["healthcheck"]["test"][-1]
    for name in ("worker-a", "worker-b"):
        bind = _flag(tuple(services[name]["command"]), "--health-bind")
        port = bind.rpartition(":")[2]  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{port}/ready" in services[name]["healthcheck"]["test"][-1]


# -- autoscaling and metrics -------------------------------------------------------------------


def _served_route(deployment_name: str) -> str:
    (container,) = containers(_all("Deployment")[deployment_name])
    argv = container["command"]
    return str(argv[argv.index("runworker") + 1])


def test_the_autoscalers_read_the_route_they_scale() -> None:
    for name in ("keda-saturation.yaml", "keda-redis-list.yaml", "hpa-saturation.yaml"):
        scaler = MANIFESTS[name][0]
        target = scaler["spec"]["scaleTargetRef"]["name"]
        assert _served_route(target) == ROUTE, name
    (prometheus,) = MANIFESTS["keda-saturation.yaml"][0]["spec"]["triggers"]
    assert prometheus["type"] == "prometheus" and prometheus["metricType"] == "Value"
    assert SATURATION in prometheus["metadata"]["query"]
    (redis,) = MANIFESTS["keda-redis-list.yaml"][0]["spec"]["triggers"]
    assert redis["type"] == "redis"
    assert redis["metadata"]["listName"] == DistKeys("asgi").queue(ROUTE) == "asgi:{rt:api}:q"
    auth = MANIFESTS["keda-redis-list.yaml"][1]["metadata"]["name"]
    assert redis["authenticationRef"]["name"] == auth
    (external,) = MANIFESTS["hpa-saturation.yaml"][0]["spec"]["metrics"]
    metric = external["external"]["metric"]
    assert metric["name"] == "channels_distributed_route_saturation"
    assert metric["selector"]["matchLabels"] == {"route": ROUTE}
    assert external["external"]["target"]["type"] == "Value"
    adapter = yaml.safe_load((KUBERNETES / "prometheus-adapter-values.yaml").read_text())
    (rule,) = adapter["rules"]["external"]
    assert rule["name"]["as"] == metric["name"]
    assert SATURATION in DOCS


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bchannels_distributed_[a-z0-9_]*[a-z0-9]\b", text))


def test_every_metric_used_is_a_documented_metric() -> None:
    """The names come from the status server's and the processes' metrics, documented in
    docs/status-page.rst and docs/metrics.rst (which test them against the code)."""
    used = _metric_names(DOCS)
    for path in KUBERNETES.glob("*.yaml"):
        used |= _metric_names(path.read_text())
    assert "channels_distributed_route_saturation" in used
    documented = set()
    for page in REFERENCES:
        documented |= _metric_names((ROOT / "docs" / page).read_text())
    missing = {name for name in used
               if name not in documented and name.removesuffix("_total") not in documented}
    assert not missing, f"not in docs/{', docs/'.join(REFERENCES)}: {sorted(missing)}"


# -- docs and packaging ------------------------------------------------------------------------


def test_the_docs_name_every_deploy_file_and_say_how_it_is_checked() -> None:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.name in DOCS, f"docs/operations.rst does not mention {path.name}"
    text = " ".join(DOCS.split())
    assert "checked by lint only" in text
    for page in REFERENCES:
        assert page in DOCS


def test_the_sdist_carries_deploy() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert re.search(r"^graft deploy$", manifest, re.M), "MANIFEST.in: graft deploy"


# -- systemd -----------------------------------------------------------------------------------


def _units_with_stub_programs(folder: Path) -> list[Path]:
    """The units, their programs in the virtualenv replaced by stubs (verify needs every
    ExecStart program to exist and be executable)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    units = []
    for unit in sorted([*SYSTEMD.glob("*.service"), *SYSTEMD.glob("*.timer")]):
        text = unit.read_text()
        for program in set(re.findall(r"/srv/myproject/venv/bin/([\w.-]+)", text)):
            stub = bin_dir / program
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
        units.append(folder / unit.name)
        units[-1].write_text(text.replace("/srv/myproject/venv/bin/", f"{bin_dir}/"))
    return units


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd); "
                    "the units' commands and flags are checked all the same")
    return found


@pytest.mark.processes
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    units = _units_with_stub_programs(tmp_path)
    # An instance of the template is verified as well as the template.
    instance = tmp_path / "channels-distributed-worker@api.service"
    instance.write_text((tmp_path / "channels-distributed-worker@.service").read_text())
    done = subprocess.run([analyze, "verify", "--man=no", *map(str, [*units, instance])],
                          capture_output=True, text=True, timeout=60)
    # verify exits 0 on an unknown key, saying so on stderr: both must be clean.
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


@pytest.mark.processes
def test_the_services_are_hardened(tmp_path: Path) -> None:
    """``systemd-analyze security`` rates each service "OK" (exposure 2.5 or less of 10)."""
    analyze = _systemd_analyze()
    for unit in _units_with_stub_programs(tmp_path):
        if unit.suffix != ".service":
            continue
        done = subprocess.run([analyze, "security", "--offline=yes", "--threshold=25",
                               str(unit)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
