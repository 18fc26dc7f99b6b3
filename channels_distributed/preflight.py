"""The Redis preflight: whether the servers of a deployment would lose the package's work or
refuse it, found before anything runs (``channels-distributed check``, ``manage.py check
--deploy``; docs/preflight.rst).

Every primary of the topology (each sharded server, the master Sentinel names, each primary of a
cluster) is asked, on the package's own transport, for:

* ``W010``: an evicting ``maxmemory-policy`` (``transport/eviction.py``, which the edge and the
  workers also read at start);
* ``E011``: a Redis too old for the topology (``transport/versions.py``);
* ``E012``: a command, the keys under the prefix or the presence channels that the user's ACL
  refuses, or a command the server does not know (``transport/permissions.py``);
* ``W013``/``E013``: a clock skew between this machine and Redis beyond what deadlines
  tolerate (``transport/skew.py``);
* ``E014``: a server that cannot be reached or logged in to;
* ``W015``: a check that could not run (the ACL refuses what it reads), and why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from .conf.hosts import HostSpec
from .exceptions import ChannelsDistributedError, ReplyError, UnsupportedServer
from .transport import eviction, permissions, skew, versions
from .transport.refusals import denied
from .transport.resp import RespLink
from .transport.topology import Shard, Topology

__all__ = ["Checked", "Finding", "Report", "preflight", "run"]

PREFIX = "channels_distributed."
EVICTING, TOO_OLD, ACL, SKEW, UNREACHABLE, UNCHECKED = "010", "011", "012", "013", "014", "015"
_TIMEOUT = 2.0
_PLACEMENTS = 1000  # random scratch tags tried to find one a shard serves


@dataclass(frozen=True)
class Finding:
    """One thing found on one server: its level ("warning" or "error"), its id (the Django
    check id), what was found, and the fix."""

    level: str
    id: str
    server: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.level.upper()} {self.id} {self.server}: {self.problem}. Fix: {self.fix}"


def _finding(level: str, number: str, server: str, problem: str, fix: str) -> Finding:
    return Finding(level, f"{PREFIX}{'E' if level == 'error' else 'W'}{number}", server,
                   problem, fix)


@dataclass(frozen=True)
class Checked:
    """A server that was checked: its version, and what the package falls back to on it."""

    server: str
    version: str | None
    fallbacks: str = ""

    def describe(self) -> str:
        text = f"{self.server}: {self.version or 'version unknown'}"
        return f"{text} ({self.fallbacks})" if self.fallbacks else text


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    servers: list[Checked] = field(default_factory=list)  # those that could be checked
    primaries: int = 0  # how many there are

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def status(self) -> int:
        """The exit status of ``channels-distributed check``: 1 on any error, else 0."""
        return 1 if self.errors else 0

    def lines(self) -> list[str]:
        """One line per finding, then the summary."""
        errors, warnings = len(self.errors), len(self.warnings)
        checked = "; ".join(server.describe() for server in self.servers)
        shown = f" ({checked})" if checked else ""
        return [*(finding.line() for finding in self.findings),
                f"checked {len(self.servers)} of {self.primaries} server(s){shown}: "
                f"{errors} error(s), {warnings} warning(s)"]

    def as_json(self) -> dict[str, Any]:
        return {"schema_version": 1, "ok": not self.errors, "errors": len(self.errors),
                "warnings": len(self.warnings), "primaries": self.primaries,
                "servers": [vars(server) for server in self.servers],
                "findings": [vars(finding) for finding in self.findings]}


@dataclass
class _Run:
    """One preflight's settings and what it found so far."""

    topology: Topology
    prefix: str
    workers: bool
    window: float
    clock: Callable[[], float]
    timeout: float
    report: Report = field(default_factory=Report)

    @property
    def cluster(self) -> bool:
        return self.topology.cluster is not None

    def add(self, level: str, number: str, server: str, problem: str, fix: str) -> None:
        self.report.findings.append(_finding(level, number, server, problem, fix))


async def preflight(hosts: Sequence[HostSpec], prefix: str, *, workers: bool = True,
                    window: float = 5.0, clock: Callable[[], float] = time.time,
                    timeout: float = _TIMEOUT) -> Report:
    """Check every primary of the servers ``hosts`` names, for keys under ``prefix``: for the
    edge and the workers (``workers``: their ACL too) or the channel layer alone, whose
    deadlines are ``window`` seconds ahead (worker_timeout; the layer's expiry). ``clock`` is
    this machine's (unix seconds). Bad hosts raise ConfigurationError."""
    try:
        topology = Topology(hosts, retry_window=timeout)
    except UnsupportedServer as exc:  # a cluster node without CLUSTER SHARDS
        return Report([_unsupported(exc, hosts)], primaries=len(hosts))
    run = _Run(topology, prefix, workers, window, clock, timeout)
    run.report.primaries = len(topology.shards)
    try:
        for shard in list(topology.shards):
            await _check_shard(run, shard)
    finally:
        await topology.close()
    return run.report


def _unsupported(exc: UnsupportedServer, hosts: Sequence[HostSpec]) -> Finding:
    """A cluster node that answered CLUSTER INFO but not CLUSTER SHARDS: a Redis 6.2, or a user
    that may not run it."""
    where = ", ".join(spec.describe() for spec in hosts)
    if not denied(exc.problem):
        return _finding("error", TOO_OLD, where, exc.problem, exc.fix)
    user = hosts[0].username or "default"
    return _finding("error", ACL, where, exc.problem, f"ACL SETUSER {user} +cluster|shards on "
                    "every node (ACLs are per node)")


def run(hosts: Sequence[HostSpec], prefix: str, **options: Any) -> Report:
    """``preflight()`` from synchronous code (``manage.py check``), also where this thread
    runs an event loop already (then on a thread of its own)."""
    coroutine: Coroutine[Any, Any, Report] = preflight(hosts, prefix, **options)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _check_shard(run: _Run, shard: Shard) -> None:
    server = shard.spec.describe()
    try:
        link = await asyncio.wait_for(shard.connect_once("preflight"), run.timeout)
    except (ChannelsDistributedError, OSError, asyncio.TimeoutError) as exc:
        run.add("error", UNREACHABLE, server, f"cannot connect or log in: {exc or 'timed out'}",
                "check that the server runs, that the URL points at it (host, port, "
                "database) and the username and password")
        return
    try:
        await _checks(run, shard, link)
    except ReplyError as exc:  # not a refusal (those are findings): LOADING, BUSY...
        run.add("error", UNREACHABLE, shard.spec.describe(), f"a check failed: {exc}",
                "run the check again once the server answers normally")
    except (ChannelsDistributedError, OSError, asyncio.TimeoutError) as exc:
        run.add("error", UNREACHABLE, shard.spec.describe(), f"the connection failed during "
                f"the checks: {exc or 'timed out'}", "check that the server stays up and "
                "reachable, then run the check again")
    finally:
        link.close()


async def _checks(run: _Run, shard: Shard, link: RespLink) -> None:
    server = shard.spec.describe()
    unchecked: list[str] = []
    version = await _version(link, run.timeout)
    if version is None:
        unchecked.append("the server's version (INFO and HELLO refused)")
    elif not _judge_version(run, shard.spec, version):
        return
    try:
        found = await eviction.check(shard, run.timeout)
    except ReplyError as exc:
        unchecked.append(f"the eviction policy (INFO memory: {exc})")
    else:
        if found.evicts:
            run.add("warning", EVICTING, server, found.problem(), eviction.Eviction.FIX)
    if version is None or versions.problem(version, run.cluster) is None:
        # (On a Redis too old, every newer command would be "unknown".)
        await _check_acl(run, shard, link, version, unchecked)
    try:
        judged = skew.judge(await skew.measure(link, run.clock), run.window)
    except ReplyError as exc:
        unchecked.append(f"the clock (TIME and INFO server: {exc})")
    else:
        if judged is not None:
            _report_skew(run, server, *judged)
    if unchecked:
        run.add("warning", UNCHECKED, server, f"could not check {'; '.join(unchecked)}",
                "grant the user +info (and +time), read-only commands, or run the check as a "
                "user that may run them")
    run.report.servers.append(Checked(server, str(version) if version else None,
                                      versions.fallbacks(version) if version else ""))


def _judge_version(run: _Run, spec: HostSpec, version: versions.ServerVersion) -> bool:
    """Report what the server's version and mode rule out; whether the other checks apply
    (not to a Sentinel)."""
    server = spec.describe()
    if version.mode == "sentinel":
        run.add("error", UNREACHABLE, server, "this is a Redis Sentinel, not a Redis server",
                "point at the master it watches: redis+sentinel://HOST:26379/MASTER_NAME "
                "(docs/deployment.rst, Sentinel)")
        return False
    wrong = versions.problem(version, run.cluster)
    if wrong is not None:
        run.add("error", TOO_OLD, server, *wrong)
    elif version.mode == "cluster" and not run.cluster:
        # How the package finds out about a cluster (cluster.probe): refused, it takes the node
        # for a standalone server, and every key another node serves is refused with MOVED.
        user = spec.username or "default"
        run.add("error", ACL, server, f"this is a Redis Cluster node, but Redis user {user!r} "
                "may run neither CLUSTER SHARDS nor CLUSTER INFO: the package takes it for a "
                "standalone server, and each key another node serves is refused (MOVED)",
                f"ACL SETUSER {user} +cluster|shards +cluster|info on every node (ACLs are per "
                "node)")
    return True


async def _version(link: RespLink, timeout: float) -> versions.ServerVersion | None:
    try:
        info = await asyncio.wait_for(link.call("INFO", "server"), timeout)
        return versions.from_info(info.decode(errors="replace"))
    except ReplyError as exc:
        if not denied(str(exc)):
            raise
    try:
        return versions.from_hello(await asyncio.wait_for(link.call("HELLO", 2), timeout))
    except ReplyError:
        return None


async def _check_acl(run: _Run, shard: Shard, link: RespLink,
                     version: versions.ServerVersion | None, unchecked: list[str]) -> None:
    spec = shard.spec
    scratch = _scratch(run, shard)
    if scratch is None:
        unchecked.append("the ACL (no scratch key of this server found)")
        return
    rules = permissions.rules_for(run.workers)
    # INFO is left to the checks that read it: without it the edge and the workers only skip
    # reading the eviction policy (W015 says which checks could not run).
    wanted = [command for command in permissions.commands(rules)
              if permissions.needed(command, spec.db, run.cluster) and command != "info"]
    access = await permissions.probe(link, scratch, wanted, spec.db,
                                     lambda: shard.connect_once("preflight"))
    if access.refused or access.keys or access.channels or access.rings:
        _report_refusals(run, spec, access, rules, version)
    if access.unknown:
        run.add("error", ACL, spec.describe(), "the server does not know "
                f"{', '.join(c.upper() for c in access.unknown)} (renamed or disabled)",
                "the package needs every command of its ACL under its own name: remove the "
                "rename-command lines (or the service's restriction) for them")


def _report_refusals(run: _Run, spec: HostSpec, access: permissions.Access, rules: str,
                     version: versions.ServerVersion | None) -> None:
    user, prefix = spec.username or "default", run.prefix
    named = [command.upper() for command in access.refused]
    grants = [f"+{command}" for command in access.refused]
    if access.keys:
        named.append(f"keys under '{prefix}:'")
        grants.insert(0, f"~{prefix}:*")
    if access.channels:
        named.append(f"channels '{prefix}:presence:*'")
    if access.channels or "subscribe" in access.refused:
        # (While SUBSCRIBE is refused, the channels cannot be tried: granted with it, which
        # changes nothing where they are granted already.)
        grants.insert(0, f"&{prefix}:presence:*")
    if access.rings:  # spread routes' doorbells (docs/distributed.rst)
        named.append(f"channels '{prefix}:ring:*'")
        grants.insert(0, f"&{prefix}:ring:*")
    everything = rules.replace("~asgi:", f"~{prefix}:").replace("&asgi:", f"&{prefix}:")
    if version is not None and version.as_redis < (7, 0):
        everything = everything.replace("+blmpop ", "")  # 6.2 refuses a command it lacks
    needs = "the edge and the workers need" if run.workers else "the channel layer needs"
    on_each = " on every node (ACLs are per node)" if run.cluster else ""
    run.add("error", ACL, spec.describe(), f"Redis user {user!r} may not use "
            f"{', '.join(named)} (NOPERM), which {needs}",
            f"ACL SETUSER {user} {' '.join(grants)}{on_each}; everything the package needs: "
            f"ACL SETUSER {user} {everything}")


def _scratch(run: _Run, shard: Shard) -> permissions.Scratch | None:
    """Scratch keys the shard serves (a random tag until one lands in its slots)."""
    for _ in range(_PLACEMENTS):
        scratch = permissions.Scratch(run.prefix)
        if run.topology.shard_for(scratch.key("l")) is shard:
            return scratch
    return None


def _report_skew(run: _Run, server: str, level: str, certain: float,
                 sample: skew.Sample) -> None:
    warn, error = skew.limits(run.window)
    side = "ahead of" if sample.offset > 0 else "behind"
    run.add(level, SKEW, server, f"Redis' clock is {certain:.2f} s {side} this machine's (at "
            f"least; measured {abs(sample.offset):.3f} s +- {sample.uncertainty:.3f} s), above "
            f"the {error if level == 'error' else warn:g} s that deadlines {run.window:g} s "
            "ahead tolerate", "synchronise the clocks of this machine and of the Redis server "
            "with NTP (chrony, systemd-timesyncd)")
