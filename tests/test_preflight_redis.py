"""``channels-distributed check`` (the Redis preflight) against real servers: a healthy
deployment of each topology has nothing to report, and each thing that would make Redis lose or
refuse work is found with its fix: an evicting policy, an ACL without a command, the prefix or
the presence channels, a clock skew (this machine's clock injected), a server too old for its
topology, a server that cannot be reached. The judgements alone: tests/test_preflight.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import unique_prefix
from servers import ServerPool, require_kind

from channels_distributed.cli import main
from channels_distributed.conf.hosts import parse_hosts
from channels_distributed.embedded import RedisServer, _cluster_port
from channels_distributed.preflight import Report, preflight, run
from channels_distributed.transport.refusals import LAYER_ACL, WORKER_ACL

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)


def _ids(report: Report) -> list[str]:
    return [finding.id.rpartition(".")[2] for finding in report.findings]


def _is_62(server: RedisServer) -> bool:
    return b"redis_version:6." in server.command("INFO", "server")


def _user(server: RedisServer, name: str, rules: str) -> str:
    """An ACL user ``name`` (password 'pw') with ``rules``; a URL logging in as it."""
    if _is_62(server):
        rules = rules.replace("+blmpop ", "")  # 6.2 does not know BLMPOP (nor grants it)
    reply = server.command("ACL", "SETUSER", name, "reset", "on", ">pw", *rules.split())
    assert reply == b"+OK\r\n", reply
    return f"redis://{name}:pw@127.0.0.1:{server.port}/0"


def _rules(prefix: str, workers: bool = True) -> str:
    rules = f"{LAYER_ACL} {WORKER_ACL}" if workers else LAYER_ACL
    return rules.replace("~asgi:", f"~{prefix}:").replace("&asgi:", f"&{prefix}:")


def test_a_healthy_deployment_has_nothing_to_report(topology: Any) -> None:
    """Every primary is checked (three when sharded or on a cluster), and the probes leave
    no key behind."""
    prefix = unique_prefix()
    report = run(parse_hosts(topology.hosts), prefix)
    assert report.findings == [], report.lines()
    assert len(report.servers) == len(topology.servers)
    assert all(server.version for server in report.servers)
    assert topology.keys(f"{prefix}:*") == []
    assert report.status == 0


def test_an_evicting_policy_is_a_warning(redis_fresh: RedisServer,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    redis_fresh.command("CONFIG", "SET", "maxmemory", "100mb")
    redis_fresh.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    try:
        assert main(["check", "--url", redis_fresh.url]) == 0  # warnings only
    finally:
        redis_fresh.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    (line, summary) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"WARNING channels_distributed.W010 {redis_fresh.url}: ")
    assert "maxmemory-policy allkeys-lru" in line and "Fix: Set maxmemory-policy to noeviction" \
        in line
    assert summary.endswith("0 error(s), 1 warning(s)")


def test_an_acl_without_blmove_is_an_error_naming_the_command_and_the_fix(
        redis_fresh: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = unique_prefix()
    url = _user(redis_fresh, "nomove", _rules(prefix).replace("+blmove ", ""))
    assert main(["check", "--url", url, "--prefix", prefix]) == 1
    (line, _) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"ERROR channels_distributed.E012 {redis_fresh.url}: Redis user "
                           "'nomove' may not use BLMOVE (NOPERM), which the edge and the "
                           "workers need. Fix: ACL SETUSER nomove +blmove; everything the "
                           f"package needs: ACL SETUSER nomove ~{prefix}:* "), line
    assert redis_fresh.keys() == []  # the scratch keys were deleted


@pytest.mark.parametrize("kind", ["redis-6.2", "redis-7", "valkey-8"])
def test_each_server_kind_words_its_refusals_as_the_probe_reads_them(
        redis_pool: ServerPool, kind: str) -> None:
    """The user with exactly the advised ACL passes; one without LMOVE, the prefix's keys,
    the presence channels and the doorbell channels is told each."""
    (server,) = redis_pool.get(kind)
    prefix = unique_prefix()
    try:
        good = run(parse_hosts([_user(server, f"good{prefix}", _rules(prefix))]), prefix)
        assert good.findings == [], good.lines()
        bad = _user(server, f"bad{prefix}", _rules("elsewhere").replace("+lmove ", ""))
        (finding,) = run(parse_hosts([bad]), prefix).findings
    finally:
        server.command("ACL", "DELUSER", f"good{prefix}", f"bad{prefix}")
    assert finding.id == "channels_distributed.E012"
    assert f"may not use LMOVE, keys under '{prefix}:', channels '{prefix}:presence:*', " \
        f"channels '{prefix}:ring:*'" in finding.problem
    assert finding.fix.startswith(f"ACL SETUSER bad{prefix} &{prefix}:ring:* "
                                  f"&{prefix}:presence:* ~{prefix}:* +lmove; ")
    assert server.keys(f"{prefix}:*") == []


def test_a_layer_user_is_not_asked_for_the_workers_commands(redis_fresh: RedisServer) -> None:
    """The channel layer's ACL is enough for the layer; what the preflight could not read
    with it (INFO, TIME) is a warning that says so."""
    prefix = unique_prefix()
    url = _user(redis_fresh, "layer", _rules(prefix, workers=False))
    report = run(parse_hosts([url]), prefix, workers=False, window=60.0)
    assert _ids(report) == ["W015"], report.lines()
    assert "could not check the eviction policy" in report.findings[0].problem
    assert report.servers[0].version  # from HELLO, which any user may send
    assert _ids(run(parse_hosts([url]), prefix)) == ["E012", "W015"]  # as a worker: refused


@pytest.mark.parametrize(("ahead", "found"), [(10.0, "E013"), (-0.9, "W013"), (0.0, None)])
def test_a_skewed_clock_is_found(redis_single: Any, ahead: float, found: str | None) -> None:
    """This machine's clock, injected ``ahead`` seconds ahead of the real one (which Redis
    on this machine shares)."""
    report = run(parse_hosts(redis_single.hosts), unique_prefix(),
                 clock=lambda: time.time() + ahead)
    assert _ids(report) == ([found] if found else [])
    if found:
        problem = report.findings[0].problem
        shown = re.match(r"Redis' clock is ([\d.]+) s (behind|ahead of) this machine's", problem)
        assert shown is not None, problem
        assert float(shown.group(1)) == pytest.approx(abs(ahead), abs=0.05)
        assert shown.group(2) == ("behind" if ahead > 0 else "ahead of")
        assert "NTP" in report.findings[0].fix


def test_without_time_the_clock_is_read_from_info(redis_fresh: RedisServer) -> None:
    """The advised ACL has +info but not +time: INFO server's server_time_usec serves."""
    prefix = unique_prefix()
    url = _user(redis_fresh, "notime", _rules(prefix))
    report = run(parse_hosts([url]), prefix, clock=lambda: time.time() - 10)
    assert _ids(report) == ["E013"], report.lines()
    shown = re.match(r"Redis' clock is ([\d.]+) s ahead of", report.findings[0].problem)
    assert shown is not None and float(shown.group(1)) == pytest.approx(10, abs=0.05)


@pytest.mark.parametrize(("kind", "version", "fallbacks"), [
    ("redis-6.2", "Redis 6.2.", "BLPOP then LPOP in place of BLMPOP"),
    ("redis-7", "Redis 7.", ""),
    ("valkey-8", "Valkey 8.", ""),
])
def test_the_version_is_read_and_what_the_package_falls_back_to(
        redis_pool: ServerPool, kind: str, version: str, fallbacks: str) -> None:
    (server,) = redis_pool.get(kind)
    report = run(parse_hosts([server.url]), unique_prefix())
    assert report.findings == []
    (checked,) = report.servers
    assert checked.version is not None and checked.version.startswith(version)
    assert checked.fallbacks.startswith(fallbacks)


@pytest.fixture
def cluster_62() -> Iterator[RedisServer]:
    """A Redis 6.2 cluster node (no CLUSTER SHARDS): one, with no slots, is enough to ask."""
    binary = require_kind("redis-6.2").binary
    # On a port a cluster node may have (its bus listens 10000 above), as RedisCluster's nodes.
    with RedisServer(port=_cluster_port(), binary=binary,
                     extra_args=["--cluster-enabled", "yes"]) as server:
        yield server


def test_a_62_cluster_is_too_old(cluster_62: RedisServer) -> None:
    report = run(parse_hosts([cluster_62.url]), unique_prefix())
    assert _ids(report) == ["E011"]
    assert "Redis Cluster needs Redis 7.0 or later, or Valkey" in report.findings[0].fix


def test_an_unreachable_server_is_an_error(redis_fresh: RedisServer,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = redis_fresh.url
    redis_fresh.stop()
    assert main(["check", "--url", url, "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["ok"] is False and shown["servers"] == []
    assert [f["id"] for f in shown["findings"]] == ["channels_distributed.E014"]
    assert "cannot connect" in shown["findings"][0]["problem"]


def test_bad_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--url", "ftp://nowhere"]) == 2
    assert "is not a redis://" in capsys.readouterr().err
    assert main(["check", "--url", "redis://127.0.0.1:1/0", "--worker-timeout", "0"]) == 2
    assert "--worker-timeout: expected seconds above 0" in capsys.readouterr().err


async def test_it_runs_from_a_running_event_loop(redis_single: Any) -> None:
    """``run()`` (what manage.py check calls) works where a loop runs already, as does
    ``preflight()`` awaited in it."""
    prefix = unique_prefix()
    assert run(parse_hosts(redis_single.hosts), prefix).findings == []
    assert (await preflight(parse_hosts(redis_single.hosts), prefix)).findings == []


def test_on_a_cluster_each_primary_is_probed_for_its_own_acl(redis_cluster: Any) -> None:
    """ACLs are per node: a node whose user lacks BLMOVE is named, the others are not."""
    prefix = unique_prefix()
    name = f"u{prefix}"
    lacking = redis_cluster.servers[2]
    for server in redis_cluster.servers:
        rules = _rules(prefix)
        _user(server, name, rules.replace("+blmove ", "") if server is lacking else rules)
    seed = redis_cluster.servers[0]
    try:
        report = run(parse_hosts([f"redis://{name}:pw@127.0.0.1:{seed.port}/0"]), prefix)
    finally:
        for server in redis_cluster.servers:
            server.command("ACL", "DELUSER", name)
    (finding,) = report.findings
    assert finding.id == "channels_distributed.E012"
    assert finding.server == f"cluster node 127.0.0.1:{lacking.port}"
    assert finding.fix.startswith(f"ACL SETUSER {name} +blmove on every node (ACLs are per node)")
    assert len(report.servers) == 3
    assert redis_cluster.keys(f"{prefix}:*") == []


def _cached_scripts(server: RedisServer) -> int:
    info = server.command("INFO", "memory")
    return int(re.search(rb"number_of_cached_scripts:(\d+)", info).group(1))  # type: ignore[union-attr]


def test_the_probes_leave_nothing_behind(redis_fresh: RedisServer) -> None:
    """No key, and no script in the script cache (EVAL, EVALSHA and SCRIPT LOAD are tried)."""
    before = _cached_scripts(redis_fresh)
    assert run(parse_hosts([redis_fresh.url]), unique_prefix()).findings == []
    assert redis_fresh.keys() == []
    assert _cached_scripts(redis_fresh) == before


def test_a_command_the_server_does_not_know_is_an_error() -> None:
    """A command renamed away (rename-command, or a managed service's restriction)."""
    with RedisServer(extra_args=["--rename-command", "BLMOVE", ""]) as server:
        (finding,) = run(parse_hosts([server.url]), unique_prefix()).findings
    assert finding.id == "channels_distributed.E012"
    assert finding.problem == "the server does not know BLMOVE (renamed or disabled)"
    assert "rename-command" in finding.fix


def test_a_database_the_user_may_not_select_is_a_failed_login(redis_fresh: RedisServer) -> None:
    prefix = unique_prefix()
    url = _user(redis_fresh, "nosel", _rules(prefix).replace("+select ", "")).replace("/0", "/1")
    (finding,) = run(parse_hosts([url]), prefix).findings
    assert finding.id == "channels_distributed.E014"
    assert "cannot connect or log in" in finding.problem and "SELECT" in finding.problem


@pytest.mark.parametrize(("refused", "found", "fix"), [
    ("+cluster|shards +cluster|info ", "may run neither CLUSTER SHARDS nor CLUSTER INFO",
     "+cluster|shards +cluster|info on every node"),
    ("+cluster|shards ", 'without CLUSTER SHARDS (it answered "NOPERM',
     "+cluster|shards on every node"),
])
def test_a_cluster_the_user_may_not_find_out_about_is_an_error(
        redis_cluster: Any, refused: str, found: str, fix: str) -> None:
    """Refused CLUSTER SHARDS (and INFO), the package would take the node for a standalone
    server (then every key of another node is refused) or stop at start."""
    prefix = unique_prefix()
    name = f"u{prefix}"
    for server in redis_cluster.servers:
        _user(server, name, _rules(prefix).replace(refused, ""))
    seed = redis_cluster.servers[0]
    try:
        findings = run(parse_hosts([f"redis://{name}:pw@127.0.0.1:{seed.port}/0"]),
                       prefix).findings
    finally:
        for server in redis_cluster.servers:
            server.command("ACL", "DELUSER", name)
    assert [f.id for f in findings] == ["channels_distributed.E012"]
    assert found in findings[0].problem
    assert findings[0].fix == f"ACL SETUSER {name} {fix} (ACLs are per node)"


def test_a_sentinel_given_as_a_redis_server_is_an_error(redis_sentinel: Any) -> None:
    port = redis_sentinel.seeds[0]["sentinels"][0][1]
    (finding,) = run(parse_hosts([f"redis://127.0.0.1:{port}/0"]), unique_prefix()).findings
    assert finding.id == "channels_distributed.E014"
    assert finding.problem == "this is a Redis Sentinel, not a Redis server"
    assert finding.fix.startswith("point at the master it watches: redis+sentinel://")
