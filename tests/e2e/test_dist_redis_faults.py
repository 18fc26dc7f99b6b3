"""Redis misbehaving, with real processes: entries lost (as an eviction loses them: removed by
hand while their reader is stopped), keys without a TTL, an evicting policy, a stalled server
(SIGSTOP), and a request of a newer protocol version. Nothing is delivered short, nothing hangs,
nothing is left behind."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
import time
from collections.abc import Iterator

import hiredis
import httpx
import pytest
import websockets
from deployment import Deployment, Proc
from helpers import WAIT, wait_for

from channels_distributed.embedded import RedisServer
from channels_distributed.protocol.codec import decode_entry
from channels_distributed.protocol.envelope import VERSION, decode_events, pack_connect

CHUNK = 64 * 1024  # the edge's max_chunk: one body piece per entry
BODY = bytes(range(256)) * (16 * CHUNK // 256)  # 1 MiB


def _inbox_of(deployment: Deployment, proc: Proc, role: str) -> str:
    """The inbox key of a process, named after its lease (an inbox exists once pushed to)."""
    pattern = f"{deployment.prefix}:{{p:{role}-*-{proc.popen.pid}-*}}:lease"
    found: list[bytes] = []

    def exists() -> bool:
        found[:] = deployment.redis.keys(pattern)
        return len(found) == 1

    wait_for(exists, what=f"the lease of {role}-{proc.popen.pid}")
    return found[0].decode().removesuffix(":lease") + ":in"


def _settled(deployment: Deployment, inbox: str, at_least: int) -> int:
    """How many entries ``inbox`` holds once it has ``at_least`` and stopped growing (its
    reader is stopped)."""
    seen = [-1, time.monotonic()]

    def settled() -> bool:
        length = deployment.integer("LLEN", inbox)
        if length != seen[0]:
            seen[:] = [length, time.monotonic()]
        return length >= at_least and time.monotonic() - seen[1] > 0.5

    wait_for(settled, what=f"{at_least} entries or more in {inbox}")
    return int(seen[0])


def _numbered(deployment: Deployment, inbox: str, length: int) -> list[int]:
    """The indexes of the entries of ``inbox`` that belong to a connection's stream (not a
    probe or a reset sent aside)."""
    found = []
    for index in range(length):
        reader = hiredis.Reader()
        reader.feed(deployment.redis.command("LINDEX", inbox, index))
        _, _, payload = decode_entry(reader.gets())
        if decode_events(payload)[0]:
            found.append(index)
    return found


def _lose(deployment: Deployment, inbox: str, index: int) -> None:
    """Remove the entry at ``index`` of ``inbox`` (its reader is stopped): what an eviction of
    that entry does."""
    entry = deployment.redis.command("LINDEX", inbox, index)
    value = entry.split(b"\r\n", 1)[1][:-2]
    assert deployment.integer("LREM", inbox, 1, value) == 1


def _paced_body(body: bytes, release: threading.Event) -> Iterator[bytes]:
    yield body[:CHUNK]
    release.wait(WAIT)
    for start in range(CHUNK, len(body), CHUNK):
        yield body[start:start + CHUNK]
        # A client uploading at its own pace (not a wait for a condition): pieces that reach
        # the edge in one loop turn travel as one entry, and the test needs several entries to
        # lose one in the middle (a fast edge batched the whole rest into one).
        time.sleep(0.02)


@pytest.mark.parametrize("lost", ["middle", "last"])
def test_a_body_piece_lost_in_redis_is_502_and_the_app_is_told(private: Deployment,
                                                               lost: str) -> None:
    """A POST in 64 KiB pieces; one piece vanishes from the worker's inbox. The app never sees a
    short body as whole: it is told the client is gone, and the client gets 502. A lost middle
    piece is seen when the next arrives; a lost last piece (the whole body fits in the window,
    so nothing follows it) by the worker's probe of its quiet stream."""
    body = BODY if lost == "middle" else BODY[:8 * CHUNK]
    url = private.edge()
    worker = private.worker("k-evict")
    inbox = _inbox_of(private, worker, "w")
    release = threading.Event()
    headers = {"content-length": str(len(body))}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        posted = pool.submit(httpx.post, url + "/k/evict/upload?tag=up", headers=headers,
                             content=_paced_body(body, release), timeout=WAIT)
        wait_for(private.marker("upload-started-up").exists, what="the upload to start")
        worker.signal(signal.SIGSTOP)
        try:
            release.set()
            # The stopped worker's inbox fills with the other 15 pieces (the window is 16), a
            # few to an entry.
            numbered = _numbered(private, inbox, _settled(private, inbox, at_least=2))
            _lose(private, inbox, numbered[0] if lost == "middle" else numbered[-1])
        finally:
            worker.signal(signal.SIGCONT)
        started = time.monotonic()
        response = posted.result(WAIT)
        took = time.monotonic() - started
    print(f"lost the {lost} piece: {response.status_code} after {took:.2f} s")
    assert response.status_code == 502
    # The application is told (a disconnect) as the client gets its 502: not always before.
    wait_for(private.marker("upload-read-up").exists, what="the application to be told")
    size, how = private.marker("upload-read-up").read_text().split()
    assert how == "disconnected" and int(size) < len(body)
    assert "were lost in Redis" in worker.output()
    assert took < 5.0 + 1.0 + 5.0  # the worker's redis_timeout, its probe, generous slack


def test_a_response_piece_lost_in_redis_cuts_the_response(private: Deployment) -> None:
    """A streamed response of 40 parts; one part vanishes from the edge's inbox: the response
    is cut, never completed without it."""
    url = private.edge()
    private.worker("k-cut")
    edge = private.procs[0]
    inbox = _inbox_of(private, edge, "d")
    received = b""
    with httpx.stream("GET", url + "/k/cut/stream?n=40&pause=0.02", timeout=WAIT) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        received += next(chunks)
        edge.signal(signal.SIGSTOP)
        try:
            _lose(private, inbox, _numbered(private, inbox, _settled(private, inbox, 4))[1])
        finally:
            edge.signal(signal.SIGCONT)
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in chunks:
                received += chunk
    assert b"end\n" not in received
    assert "were lost in Redis" in edge.output()


def test_every_key_the_package_writes_has_a_ttl(private: Deployment) -> None:
    """Under any maxmemory-policy but noeviction a Redis may evict them; none may stay forever
    (a crashed process leaves nothing behind)."""
    url = private.edge()
    private.worker("k-ttl")
    ws_url = url.replace("http://", "ws://") + "/k/ttl/ws"

    async def traffic() -> None:
        async with websockets.connect(ws_url, open_timeout=WAIT) as ws:
            await ws.send("x")
            await ws.recv()
            assert httpx.post(url + "/k/ttl/upload", content=BODY, timeout=WAIT).is_success
            keys = private.redis_keys()
            assert keys
            without = [key for key in keys if private.integer("PTTL", key) == -1]
            assert not without, f"keys without a TTL: {without}"

    asyncio.run(traffic())


def test_an_evicting_policy_is_warned_about_once_at_start(tmp_path: object) -> None:
    redis = RedisServer(extra_args=["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
    redis.start()
    deployment = Deployment(redis, tmp_path)  # type: ignore[arg-type]
    try:
        deployment.edge()
        worker = deployment.worker("k-lru")
        for proc in (deployment.procs[0], worker):
            wait_for(lambda proc=proc: "maxmemory-policy allkeys-lru" in proc.output(),
                     what="the warning")
            assert proc.output().count("maxmemory-policy allkeys-lru") == 1
            assert "noeviction" in proc.output()
    finally:
        deployment.close()
        redis.cleanup()


def test_a_stalled_redis_ends_requests_in_bounded_time_and_orphans_nothing(
        deployment: Deployment) -> None:
    """Redis frozen (SIGSTOP) longer than the take link's watchdog: requests sent meanwhile end
    within worker_timeout + redis_timeout with 503 or 502, a blocking take Redis runs once it
    resumes leaves no request unserved in the worker's list, and the next request is served
    within 2 s of Redis coming back."""
    worker_timeout, redis_timeout = 2.0, 1.0  # the edge's (redis_timeout: its default)
    url = deployment.edge(worker_timeout=worker_timeout)
    deployment.worker("k-stall")
    assert httpx.get(url + "/k/stall/hello", timeout=WAIT).status_code == 200
    process = deployment.redis.process  # type: ignore[union-attr]
    assert process is not None

    def timed(path: str) -> tuple[float, int]:
        started = time.monotonic()
        try:
            status = httpx.get(url + path, timeout=WAIT).status_code
        except httpx.HTTPError:
            status = 0
        return time.monotonic() - started, status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        process.send_signal(signal.SIGSTOP)
        try:
            during = []
            for i in range(6):  # some before the watchdog (3 s), some after
                during.append(pool.submit(timed, f"/k/stall/hello?i={i}"))
                time.sleep(0.7)
        finally:
            process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        results = [future.result() for future in during]
    first = None
    while first is None and time.monotonic() - resumed < WAIT:
        if timed("/k/stall/hello")[1] == 200:
            first = time.monotonic() - resumed
    print("during the stall:", [(round(t, 2), s) for t, s in results],
          f"first 200 {first:.2f} s after Redis resumed")
    bound = worker_timeout + redis_timeout + 1.5  # generous slack
    assert all(status in (200, 502, 503) and took < bound for took, status in results), results
    assert first is not None and first < 2.0
    for key in deployment.redis.keys(f"{deployment.prefix}:*:p:*"):
        wait_for(lambda key=key: deployment.integer("LLEN", key) == 0,
                 what=f"{key!r} to hold nothing")


def test_a_request_of_a_newer_protocol_is_refused_naming_both_versions(
        private: Deployment) -> None:
    """A worker never misreads a request of a newer edge: it says so once, and tells that
    edge the request will never run (its client gets 503 at once)."""
    worker = private.worker("k-newer")
    queue = f"{private.prefix}:{{rt:k-newer}}:q"
    reply = f"{private.prefix}:{{p:d-test}}:in"
    scope = {"type": "http", "path": "/k/newer/hello", "headers": []}
    for conn in ("n1", "n2"):
        raw = pack_connect(conn, scope, reply, "d-test", int(time.time() * 1000) + 5000, False,
                           None, False, version=VERSION + 1)
        private.redis.command("RPUSH", queue, raw)
    wait_for(lambda: private.integer("LLEN", reply) == 2, what="two answers")
    answers = []
    for _ in range(2):
        reader = hiredis.Reader()
        reader.feed(private.redis.command("LPOP", reply))
        target, _, payload = decode_entry(reader.gets())
        answers.append((target, decode_events(payload)[1]))
    assert sorted(answers) == [("n1", [{"type": "cd.expired"}]), ("n2", [{"type": "cd.expired"}])]
    log = worker.output()
    assert log.count(f"protocol version {VERSION + 1}") == 1, log
    assert f"versions 1 to {VERSION}" in log and "upgrade the workers before the edges" in log
    assert worker.alive()


def test_a_take_redis_runs_after_a_stall_is_served(deployment: Deployment) -> None:
    """Redis stalls past the take link's watchdog (3 s): the worker drops that link, but Redis
    still runs the abandoned BLMOVE when it resumes, moving a request into the worker's
    processing list whose answer nobody reads. The worker looks at its list once it reaches
    Redis again, and serves what it finds. (Here the test plays that BLMOVE: it puts the request
    in the list right after the stall.)"""
    worker = deployment.worker("k-orphan")
    registry = f"{deployment.prefix}:{{rt:k-orphan}}:w"
    reader = hiredis.Reader()
    reader.feed(deployment.redis.command("SMEMBERS", registry))
    (worker_id,) = reader.gets()
    processing = f"{deployment.prefix}:{{rt:k-orphan}}:p:{worker_id.decode()}"
    process = deployment.redis.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: "cannot take from route k-orphan" in worker.output(), timeout=WAIT,
                 what="the worker to drop its take link")
    finally:
        process.send_signal(signal.SIGCONT)
    reply = f"{deployment.prefix}:{{p:d-test}}:in"
    scope = {"type": "http", "method": "GET", "path": "/k/orphan/hello", "headers": []}
    raw = pack_connect("orphan", scope, reply, "d-test", int(time.time() * 1000) + 10_000, True,
                       b"", False)
    deployment.redis.command("RPUSH", processing, raw)
    wait_for(lambda: deployment.integer("LLEN", reply) >= 1, what="an answer")
    reader = hiredis.Reader()
    reader.feed(deployment.redis.command("LPOP", reply))
    target, _, payload = decode_entry(reader.gets())
    events = decode_events(payload)[1]
    assert target == "orphan" and events[0]["type"] == "cd.accept"
    assert any(e["type"] == "http.response.start" and e["status"] == 200 for e in events)
    wait_for(lambda: deployment.integer("LLEN", processing) == 0,
             what="the processing list to empty")
    assert "a dropped connection took; serving it" in worker.output()
