"""What operators see of running edges and workers: their cards in Redis, why a request was not
served (by cause, logged once per cause and route per interval), health probes, JSON log lines.
Real processes on a real Redis; nothing here asserts a timing."""

from __future__ import annotations

import json
import signal
import socket

import httpx
from deployment import Deployment, Proc
from helpers import wait_for

from channels_distributed.embedded import free_port
from channels_distributed.figures import host_name


def _cards(deployment: Deployment) -> dict[str, dict[str, object]]:
    """The live processes' cards, by id, as a status reader finds them."""
    directory = f"{deployment.prefix}:directory"
    found = {}
    members = deployment.reply("ZRANGE", directory, 0, -1)
    assert isinstance(members, list)
    for raw in members:
        process = raw.decode()
        card = deployment.reply("GET", f"{deployment.prefix}:{{p:{process}}}:card")
        if isinstance(card, bytes):
            found[process] = json.loads(card)
    return found


def _card_of(deployment: Deployment, proc: Proc) -> dict[str, object] | None:
    for card in _cards(deployment).values():
        if card["pid"] == proc.popen.pid:
            return card
    return None


def test_processes_publish_their_cards_and_leave_the_directory_when_they_stop(
        private: Deployment) -> None:
    url = private.edge(worker_timeout=2)
    worker = private.worker("k-cards", args=("--concurrency", "7"))
    assert httpx.get(url + "/k/cards/hello", timeout=10).status_code == 200
    assert httpx.get(url + "/k/cards/boom-before", timeout=10).status_code == 500

    def worker_card() -> dict[str, object] | None:
        card = _card_of(private, worker)
        return card if card and card["served"] == 2 else None

    card = wait_for(worker_card, what=f"the worker's card, in {_cards(private)}")
    assert isinstance(card, dict)
    assert card["side"] == "worker" and card["host"] == host_name()
    assert card["state"] == "serving" and card["concurrency"] == 7
    assert card["routes"] == {"k-cards": {"in_flight": 0, "served": 2, "errors": 1}}
    assert card["build"] in ("compiled", "python") and card["protocol"] == 2
    assert str(card["id"]).startswith(f"w-{host_name()}-{worker.popen.pid}-")

    def edge_card() -> dict[str, object] | None:
        edges = [c for c in _cards(private).values() if c["side"] == "edge"]
        return edges[0] if edges and edges[0]["requests"] == 2 else None

    edge = wait_for(edge_card, what=f"the edge's card, in {_cards(private)}")
    assert isinstance(edge, dict)
    assert edge["routes"] == {"k-cards": {"requests": 2, "served": 2, "failures": {}}}
    assert edge["worker_timeout"] == 2 and edge["open"] == 0

    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert str(card["id"]) not in _cards(private)
    assert private.integer("EXISTS", f"{private.prefix}:{{p:{card['id']}}}:card") == 0


def test_no_worker_and_busy_are_told_apart_counted_and_logged_once_per_interval(
        private: Deployment) -> None:
    url = private.edge(worker_timeout=0.3, CD_LOG_INTERVAL="600")
    edge = private.procs[-1]
    for _ in range(3):
        assert httpx.get(url + "/k/nobody/x", timeout=10).status_code == 503
    private.worker("k-busy", args=("--concurrency", "1"))
    with httpx.Client(timeout=10) as client:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(client.get, url + "/k/busy/slow?s=2")
            wait_for(lambda: any(c.get("in_flight") == 1 for c in _cards(private).values()),
                     what="the slow request in flight")
            assert client.get(url + "/k/busy/hello").status_code == 503
            assert slow.result().status_code == 200

    def counted() -> dict[str, object] | None:
        edges = [c for c in _cards(private).values() if c["side"] == "edge"]
        routes = edges[0]["routes"] if edges else {}
        assert isinstance(routes, dict)
        if routes.get("k-nobody", {}).get("failures") == {"no_worker": 3} and \
                routes.get("k-busy", {}).get("failures") == {"busy": 1}:
            return edges[0]
        return None

    card = wait_for(counted, what=f"the failures counted, in {_cards(private)}")
    assert isinstance(card, dict) and card["failures"] == {"no_worker": 3, "busy": 1}
    output = edge.output()
    assert output.count("no_worker on route key k-nobody") == 1, output  # once per interval
    assert output.count("busy on route key k-busy: no worker took /k/busy/hello") == 1, output


def test_the_count_of_lines_not_written_comes_with_the_next_line(private: Deployment) -> None:
    url = private.edge(worker_timeout=0.2, CD_LOG_INTERVAL="0.5")
    edge = private.procs[-1]
    for _ in range(3):
        assert httpx.get(url + "/k/quiet/x", timeout=10).status_code == 503

    def next_line() -> bool:
        httpx.get(url + "/k/quiet/x", timeout=10)
        return "(and " in edge.output()

    wait_for(next_line, what=f"a line with the count, in {edge.output()}")
    line = next(line for line in edge.output().splitlines() if "(and " in line)
    assert "no_worker on route key k-quiet" in line and "more like it in the last" in line


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def test_the_edge_answers_its_probes_itself_and_is_ready_only_while_redis_answers(
        deployment: Deployment) -> None:
    url = deployment.edge(CD_LIVE_PATH="/-/live", CD_READY_PATH="/-/ready")
    assert _get(url + "/-/live") == 200  # no route matches it: answered, not routed
    wait_for(lambda: _get(url + "/-/ready") == 200, what="the edge ready")
    redis = deployment.redis
    assert hasattr(redis, "stop") and hasattr(redis, "start")
    redis.stop()
    wait_for(lambda: _get(url + "/-/ready") == 503, what="not ready without Redis")
    assert _get(url + "/-/live") == 200
    redis.start()
    wait_for(lambda: _get(url + "/-/ready") == 200, what="ready again")


def test_a_worker_is_ready_only_while_it_holds_its_lease_and_says_so_in_its_log(
        deployment: Deployment) -> None:
    port = free_port()
    redis = deployment.redis
    assert hasattr(redis, "stop") and hasattr(redis, "start")
    redis.stop()  # the worker starts before Redis does
    worker = deployment.worker("k-health", wait=False,
                               args=("--health-bind", f"127.0.0.1:{port}"))
    probe = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(probe + "/live") == 200, what=f"the probes, in {worker.output()}")
    assert _get(probe + "/ready") == 503
    wait_for(lambda: "cannot reach Redis" in worker.output(), what="the line saying so")
    assert "serving route key" not in worker.output()  # not before Redis answered
    redis.start()
    wait_for(lambda: _get(probe + "/ready") == 200, what=f"ready, in {worker.output()}")
    wait_for(lambda: "serving route key(s) k-health" in worker.output(), what="serving")
    assert "reached Redis" in worker.output()
    redis.stop()
    wait_for(lambda: _get(probe + "/ready") == 503, what="not ready once Redis is gone")
    assert _get(probe + "/live") == 200
    redis.start()
    wait_for(lambda: _get(probe + "/ready") == 200, what="ready again")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_worker_refuses_a_health_port_in_use_at_start_up(private: Deployment) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = private.worker("k-taken", wait=False,
                                args=("--health-bind", f"127.0.0.1:{port}"))
        assert worker.wait() != 0
    assert "--health-bind" in worker.output() and "cannot listen" in worker.output()


def test_json_log_lines(private: Deployment) -> None:
    worker = private.worker("k-json", args=("--log-format", "json"))
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    serving = [line for line in lines if "serving route key(s) k-json" in line["message"]]
    assert serving and serving[0]["level"] == "INFO", worker.output()
    assert serving[0]["logger"] == "channels_distributed.worker.node"
    assert serving[0]["pid"] == worker.popen.pid and serving[0]["time"].endswith("Z")
