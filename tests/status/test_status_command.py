"""``channels-distributed status`` and ``manage.py distributed_status`` as a user runs them: the
console script against real servers (single, sharded, cluster), ``--json`` checked against
the shipped schema, ``--watch``, and what an unreachable Redis or a wrong flag gives."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from helpers import WAIT, unique_prefix
from status_cards import Writer, edge_card, validate, worker_card

from channels_distributed.conf import parse_hosts
from channels_distributed.embedded import free_port
from channels_distributed.transport.topology import Topology

pytestmark = pytest.mark.processes
SCRIPT = str(Path(sys.executable).with_name("channels-distributed"))


def _urls(topology: Any) -> list[str]:
    hosts = topology.hosts
    if topology.name == "sentinel":  # the URL form the worker and the edge take
        (host, port), = hosts[0]["sentinels"]
        return [f"redis+sentinel://{host}:{port}/mymaster"]
    return [part for url in hosts for part in ("--url", url)][1::2]


def _fill(topology: Any, prefix: str) -> None:
    async def fill() -> None:
        made = Topology(parse_hosts(topology.hosts), 2.0)
        try:
            writer = Writer(made, prefix)
            await writer.card(worker_card("w-h-1-x", {"api": {"served": 3}}, host="h", pid=1))
            await writer.card(edge_card("d-h-2-x", {"api": {"requests": 4}}, host="h", pid=2))
            await writer.queue("nobody")
            await writer.channel("chat", 2)
        finally:
            await made.close()

    asyncio.run(fill())


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, "status", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("topology", ["single", "sharded", "sentinel", "cluster"], indirect=True)
def test_json_and_table(topology: Any) -> None:
    prefix = unique_prefix()
    _fill(topology, prefix)
    urls = [part for url in _urls(topology) for part in ("--url", url)]
    shown = _status(*urls, "--prefix", prefix, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    validate(status)
    assert set(status["routes"]) == {"api", "nobody"}
    assert status["routes"]["nobody"]["queued"] == 1
    assert [w["pid"] for w in status["routes"]["api"]["workers"]] == [1]
    assert [e["pid"] for e in status["edges"]] == [2]
    table = _status(*urls, "--prefix", prefix)
    assert table.returncode == 0, table.stderr
    assert "2 route keys, 1 worker, 1 edge" in table.stdout
    assert [line.split()[:2] for line in table.stdout.splitlines()
            if line.startswith(("api ", "nobody "))] == [["api", "0"], ["nobody", "1"]]


def test_watch_prints_a_json_document_per_line(redis_single: Any) -> None:
    prefix = unique_prefix()
    _fill(redis_single, prefix)
    command = [SCRIPT, "status", "--url", redis_single.hosts[0], "--prefix", prefix, "--json",
               "--watch", "0.1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as watch:
        assert watch.stdout is not None and watch.stderr is not None
        lines = [watch.stdout.readline() for _ in range(3)]
        watch.send_signal(signal.SIGINT)  # Ctrl-C: how a watch ends
        code = watch.wait(20)
        problems = watch.stderr.read()
    times = []
    for line in lines:
        status = json.loads(line)
        validate(status)
        times.append(status["generated_at"])
    assert times == sorted(times) and len(set(times)) == 3
    assert (code, problems) == (0, "")


def test_watch_redraws_a_table_until_ctrl_c(redis_single: Any) -> None:
    """Not a terminal here: each table follows the last, a blank line between."""
    prefix = unique_prefix()
    _fill(redis_single, prefix)
    command = [SCRIPT, "status", "--url", redis_single.hosts[0], "--prefix", prefix, "--watch",
               "0.1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as watch:
        assert watch.stdout is not None
        heads = 0
        for line in watch.stdout:  # (ends if the process does)
            heads += line.startswith("channels-distributed status:")
            if heads == 2:
                break
        assert heads == 2
        watch.send_signal(signal.SIGINT)
        assert watch.wait(20) == 0


def test_watch_redraws_in_place_on_a_terminal(redis_single: Any) -> None:
    prefix = unique_prefix()
    _fill(redis_single, prefix)
    main, side = pty.openpty()
    command = [SCRIPT, "status", "--url", redis_single.hosts[0], "--prefix", prefix, "--watch",
               "0.1"]
    with subprocess.Popen(command, stdout=side, stderr=subprocess.DEVNULL) as watch:
        os.close(side)
        shown = b""
        deadline = time.monotonic() + WAIT
        while shown.count(b"\x1b[H\x1b[2J") < 2 and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                shown += os.read(main, 65536)
        watch.send_signal(signal.SIGINT)
        assert watch.wait(20) == 0
    os.close(main)
    # Each table replaces the last: the cursor home, the screen cleared, then the table.
    frames = shown.split(b"\x1b[H\x1b[2J")[1:]
    assert len(frames) >= 2, shown
    assert all(frame.startswith(b"channels-distributed status:") for frame in frames[:2])
    assert b"(every 0.1 s; Ctrl-C to stop)" in frames[0]


def test_an_unreachable_redis_is_said_and_exits_1() -> None:
    shown = _status("--url", f"redis://127.0.0.1:{free_port()}/0")
    assert shown.returncode == 1 and shown.stdout == ""
    assert "cannot read the status from Redis" in shown.stderr, shown.stderr


@pytest.mark.parametrize(("flags", "named"), [(["--watch", "0"], "--watch"),
                                               (["--scan-limit", "0"], "--scan-limit"),
                                               (["--top", "-1"], "--top")])
def test_a_wrong_flag_is_named(flags: list[str], named: str) -> None:
    shown = _status("--url", f"redis://127.0.0.1:{free_port()}/0", *flags)
    assert shown.returncode == 2 and named in shown.stderr, shown.stderr


def _layers(url: str, prefix: str) -> dict[str, Any]:
    return {"default": {"BACKEND": "channels_distributed.layer.RedisChannelLayer",
                        "CONFIG": {"hosts": [url], "prefix": prefix}}}


def test_manage_py_reads_the_projects_redis(redis_single: Any) -> None:
    prefix = unique_prefix()
    _fill(redis_single, prefix)
    out = io.StringIO()
    with override_settings(CHANNEL_LAYERS=_layers(redis_single.hosts[0], prefix)):
        call_command("distributed_status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    validate(status)
    assert status["prefix"] == prefix and set(status["routes"]) == {"api", "nobody"}
    table = io.StringIO()
    with override_settings(CHANNEL_LAYERS=_layers("redis://127.0.0.1:1/0", "elsewhere")):
        # --url and --prefix win over the settings
        call_command("distributed_status", "--url", redis_single.hosts[0], "--prefix", prefix,
                     stdout=table)
    assert "2 route keys, 1 worker, 1 edge" in table.getvalue()


def test_manage_py_says_what_is_missing() -> None:
    with override_settings(CHANNEL_LAYERS={}), pytest.raises(CommandError) as raised:
        call_command("distributed_status", stdout=io.StringIO())
    assert "CHANNEL_LAYERS['default']" in str(raised.value)
    assert "--url" in str(raised.value)
