"""``channels-distributed status --serve`` and ``manage.py distributed_status --serve`` as users
run them: a real status server over a real Redis, with real workers and requests queued as an
edge queues them; its JSON, its metrics and its token, over HTTP."""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest
from deployment import ROOT, Deployment
from helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families
from status_server import SCRIPT, TOKEN, get, queue_requests, route_of, status_server


def test_status_json_and_metrics_follow_the_deployment(deployment: Deployment) -> None:
    worker = deployment.worker("w")
    url, _ = status_server(deployment)
    queue_requests(deployment, "q", 2)
    wait_for(lambda: (route_of(url, "q") or {}).get("queued") == 2, what="2 queued on q")
    pids = wait_for(lambda: [w["pid"] for w in (route_of(url, "w") or {}).get("workers", [])],
                    what="the worker on w")
    assert pids == [worker.popen.pid]
    history = get(url, "/status.json").json()["history"]
    assert history["fields"][:2] == ["t", "queued"]
    assert history["routes"]["q"][-1][1] == 2

    metrics = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(get(url, "/metrics").text)
               for s in family.samples}
    assert metrics[("channels_distributed_route_queued", (("route", "q"),))] == 2.0
    # No worker on q: its saturation is its queue over 1.
    assert metrics[("channels_distributed_route_saturation", (("route", "q"),))] == 2.0
    assert metrics[("channels_distributed_route_workers", (("route", "w"),))] == 1.0
    assert metrics[("channels_distributed_status_up", ())] == 1.0

    worker.popen.kill()  # its card expires with its lease: the status server sees it gone
    wait_for(lambda: not (route_of(url, "w") or {}).get("workers"), what="the worker gone")


def test_with_a_token_requests_without_it_are_refused(deployment: Deployment) -> None:
    url, _ = status_server(deployment)
    for path in ("/", "/status.json", "/metrics"):
        assert httpx.get(url + path, timeout=5).status_code == 401
        assert get(url, path, token="x" * 32).status_code == 403
        assert get(url, path).status_code == 200
        assert httpx.get(url + path, params={"token": TOKEN}, timeout=5).status_code == 200


def test_a_stopped_redis_is_shown_and_the_server_goes_on(deployment: Deployment) -> None:
    url, proc = status_server(deployment)
    queue_requests(deployment, "q", 1)
    wait_for(lambda: route_of(url, "q"), what="q")
    deployment.redis.stop()  # type: ignore[union-attr]
    document = wait_for(lambda: (d := get(url, "/status.json").json())["error"] and d,
                        what="the collection's error")
    assert isinstance(document, dict)
    assert document["status"]["routes"]["q"]["queued"] == 1  # the last figures, kept
    assert "channels_distributed_status_up 0.0" in get(url, "/metrics").text
    deployment.redis.restart()  # type: ignore[union-attr]
    wait_for(lambda: get(url, "/status.json").json()["error"] is None,
             what="collections again")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_manage_py_distributed_status_serves_too(deployment: Deployment) -> None:
    queue_requests(deployment, "q", 3)
    url, _ = status_server(deployment, manage=True, token=None)
    assert (route_of(url, "q") or {}).get("queued") == 3
    assert get(url, "/", token=None).status_code == 200


@pytest.mark.parametrize(("flags", "named"), [
    (["--serve", "0.0.0.0:1"], "--token"),
    (["--serve", "127.0.0.1:1", "--json"], "--json"),
    (["--token", TOKEN], "--token"),
    (["--serve", "nowhere"], "--serve"),
])
def test_wrong_flags_stop_at_start_up(deployment: Deployment, flags: list[str],
                                      named: str) -> None:
    done = subprocess.run([SCRIPT, "status", "--url", deployment.redis.url, *flags],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=deployment.env(CHANNELS_DISTRIBUTED_STATUS_TOKEN=""))
    assert done.returncode == 2
    assert done.stderr.startswith(f"channels-distributed: {named}: "), done.stderr
