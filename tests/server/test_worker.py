"""The gunicorn worker contract, app interfaces, lifespan and signals, with a real master."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import httpx
import pytest
from gunicorn.config import Config
from gunicorn_helpers import Reader, connect
from helpers import wait_for

from channels_distributed.conf.server import ServerConfig, extra_settings, setting
from channels_distributed.exceptions import ConfigurationError
from channels_distributed.gunicorn import request_hooks

HOOKS = str(Path(__file__).with_name("hooks_conf.py"))
REQUEST_HOOKS = str(Path(__file__).with_name("request_hooks_conf.py"))
SEED_PAGE = b"<html><h1>Hello, world</h1></html>"


# -- applications ---------------------------------------------------------------------------


@pytest.mark.core
def test_seed_example_1_legacy_consumer(gunicorn):
    server = gunicorn("testproject.apps_server:hello_world")
    response = httpx.get(f"{server.url}/")
    assert response.status_code == 200
    assert response.content == SEED_PAGE
    assert response.headers["content-type"] == "text/html"


def test_seed_example_2_task_on_channel_layer_loop(gunicorn):
    server = gunicorn("testproject.apps_server:sleepy_hello", env={"SLEEPY_DELAY": "0.2"})
    response = httpx.get(f"{server.url}/", timeout=10)
    assert response.status_code == 200
    assert response.content == SEED_PAGE


def test_legacy_streaming_and_timeout(gunicorn):
    server = gunicorn("testproject.apps_server:legacy_stream")
    response = httpx.get(f"{server.url}/")
    assert response.text == "one two three"
    assert response.headers["transfer-encoding"] == "chunked"
    silent = gunicorn("testproject.apps_server:legacy_never", env={"CD_LEGACY_TIMEOUT": "0.5"})
    response = httpx.get(f"{silent.url}/", timeout=10)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_legacy_reply_after_the_503_is_dropped_quietly(gunicorn):
    # The consumer answers from a task after CD_LEGACY_TIMEOUT, when its client already got the
    # 503: the reply is dropped with one warning, not left as "Task exception was never retrieved".
    server = gunicorn(
        "edge_apps:legacy_late",
        "--pythonpath",
        str(Path(__file__).parent),
        env={"CD_LEGACY_TIMEOUT": "0.3"},
    )
    assert httpx.get(f"{server.url}/?delay=0.6", timeout=10).status_code == 503
    wait_for(lambda: server.recorded("legacy-late"), what="the late reply")
    # A request answered in time, after the late reply: anything logged about it is out by then.
    response = httpx.get(f"{server.url}/?delay=0", timeout=10)
    assert (response.status_code, response.text) == (200, "late")
    log = server.log()
    assert "never retrieved" not in log and "Traceback" not in log, log
    assert "replied after its response was over; the reply was dropped" in log


def test_legacy_async_consumer_message(gunicorn):
    server = gunicorn("testproject.apps_server:legacy_echo")
    response = httpx.post(f"{server.url}/p/q?x=1", content=b"payload")
    assert response.status_code == 201
    info = response.json()
    assert info == {
        "method": "POST",
        "path": "/p/q",
        "query_string": "x=1",
        "body": "payload",
        "http_version": "1.1",
        "scheme": "http",
        "client": info["client"],
    }
    assert info["client"][0] == "127.0.0.1"


def test_asgi2_app_is_detected(gunicorn):
    server = gunicorn("testproject.apps_server:ASGI2Hello")
    assert httpx.get(f"{server.url}/x").text == "asgi2:/x"


def test_interface_setting_overrides_detection(gunicorn):
    server = gunicorn("testproject.apps_server:legacy_named_scope", env={"CD_INTERFACE": "legacy"})
    assert httpx.get(f"{server.url}/").text == "legacy by setting"


def test_bad_setting_stops_start_up_naming_it(gunicorn):
    server = gunicorn("testproject.apps_server:echo", env={"CD_INTERFACE": "asgi4"}, ready=False)
    assert server.wait() == 3  # gunicorn's WORKER_BOOT_ERROR: the master halts
    assert "interface: unknown value 'asgi4'. use one of auto, asgi3, asgi2, legacy" in server.log()


@pytest.mark.core
@pytest.mark.parametrize("missing", [(), ("asgi_loop", "asgi_lifespan", "root_path",
                                          "websocket_max_message_size", "header_map")])
def test_settings_newer_than_gunicorn_23_take_their_defaults(missing):
    """gunicorn 23.0 lacks these settings (``cfg.asgi_loop`` raises AttributeError there): the
    worker reads them with their defaults. The floors session runs this on a real 23.0."""
    cfg = Config()
    for name in missing:
        cfg.settings.pop(name, None)  # as on a gunicorn release that predates them
    config = ServerConfig.from_gunicorn(cfg, environ={})
    assert (config.root_path, config.lifespan, config.header_map) == ("", "auto", "drop")
    assert config.ws_max_message_size == ServerConfig.ws_max_message_size
    assert setting(cfg, "asgi_loop", "auto") in ("auto", "uvloop", "asyncio")
    assert ServerConfig.from_gunicorn(cfg, environ={"CD_ROOT_PATH": "/api"}).root_path == "/api"


def test_negative_gc_threshold_names_the_setting():
    with pytest.raises(ConfigurationError, match="gc_threshold"):
        ServerConfig(**extra_settings({}, {"CD_GC_THRESHOLD": "-1"}))
    with pytest.raises(ConfigurationError, match="CD_GC_THRESHOLD"):
        extra_settings({}, {"CD_GC_THRESHOLD": "lots"})


@pytest.mark.core
def test_django_asgi_application(gunicorn):
    server = gunicorn("channels_distributed.demo.asgi:application")
    assert httpx.get(f"{server.url}/hello/").text == "Hello, world"
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/echo/", content=b"12345").status_code == 403  # no CSRF token
        token = client.get("/api/csrf/").json()["token"]  # and its cookie
        echoed = client.post("/echo/?a=b", content=b"12345", headers={"X-CSRFToken": token})
    assert echoed.json() == {"method": "POST", "path": "/echo/", "query": "a=b",
                             "body_length": 5}


# -- lifespan -------------------------------------------------------------------------------


@pytest.mark.core
def test_lifespan_startup_and_shutdown(gunicorn):
    server = gunicorn("testproject.apps_server:echo")
    pid = httpx.get(f"{server.url}/").json()["pid"]
    assert server.recorded("startup") == [str(pid)]
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert server.recorded("shutdown") == [str(pid)]


def test_lifespan_failure_halts_gunicorn(gunicorn):
    server = gunicorn("testproject.apps_server:echo", env={"FAIL_STARTUP": "1"}, ready=False)
    assert server.wait() == 3
    assert "ASGI lifespan startup failed: database unreachable" in server.log()


# -- signals and the worker contract ----------------------------------------------------------


def _slow_request(server, delay: float, results: list) -> threading.Thread:
    def run() -> None:
        try:
            response = httpx.get(f"{server.url}/slow", headers={"X-Delay": str(delay)}, timeout=30)
            results.append((response.status_code, response.text))
        except httpx.HTTPError as exc:
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: server.recorded("slow-start"), what="the slow request to start")
    return thread


def test_pre_and_post_request_hooks_run_around_each_request(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "-c", REQUEST_HOOKS)
    pid = httpx.get(f"{server.url}/hooked?x=1", headers={"X-Tag": "t1"}).json()["pid"]
    assert httpx.get(f"{server.url}/raise").status_code == 500
    wait_for(lambda: len(server.recorded("post_request")) == 2, what="two post_request calls")
    pre = [json.loads(line) for line in server.recorded("pre_request")]
    post = [json.loads(line) for line in server.recorded("post_request")]
    assert pre == [
        [pid, "GET", "/hooked", "/hooked?x=1", [1, 1], "t1"],
        [pid, "GET", "/raise", "/raise", [1, 1], None],
    ]
    assert post == [["GET", "/hooked?x=1", "GET", "x=1", 200], ["GET", "/raise", "GET", "", 500]]


def test_request_hooks_are_not_called_unless_set():
    # gunicorn's default hooks (a debug log line, nothing) are not called: no cost per request.
    cfg = Config()
    assert request_hooks(cfg, worker=None) is None
    cfg.set("post_request", lambda worker, req: None)
    assert request_hooks(cfg, worker=None) is not None


@pytest.mark.core
def test_term_lets_request_in_flight_complete(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "-c", HOOKS)
    results: list = []
    thread = _slow_request(server, 1.0, results)
    server.signal(signal.SIGTERM)
    thread.join(20)
    assert results == [(200, "slow done")]
    assert server.wait() == 0
    assert len(server.recorded("worker_exit")) == 1
    assert server.recorded("shutdown")  # lifespan shutdown after the drain


def test_quit_is_quick_and_runs_worker_int(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "-c", HOOKS)
    worker = server.worker_pids()[0]
    results: list = []
    thread = _slow_request(server, 20.0, results)
    os.kill(worker, signal.SIGQUIT)
    thread.join(15)
    assert results and isinstance(results[0], httpx.HTTPError)  # cut, not waited for
    wait_for(lambda: str(worker) in server.recorded("worker_exit"), what="worker_exit")
    assert server.recorded("worker_int") == [str(worker)]
    server.stop()


def test_abort_runs_worker_abort_and_exits_1(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "-c", HOOKS)
    worker = server.worker_pids()[0]
    os.kill(worker, signal.SIGABRT)
    wait_for(lambda: str(worker) in server.recorded("worker_exit"), what="worker_exit")
    assert server.recorded("worker_abort") == [str(worker)]
    wait_for(
        lambda: (
            f"Worker (pid:{worker}) exited with code 1" in server.log()
            or f"Worker (pid:{worker}) was sent SIGABRT" in server.log()
        ),
        what="the exit code",
    )
    server.wait_ready(count=2)  # the master replaced it
    assert httpx.get(f"{server.url}/").json()["pid"] != worker


def test_usr1_reopens_access_log(gunicorn, tmp_path):
    access = tmp_path / "access.log"
    server = gunicorn("testproject.apps_server:echo", "--access-logfile", str(access))
    httpx.get(f"{server.url}/before")
    wait_for(lambda: access.exists() and "/before" in access.read_text(), what="first line")
    access.rename(tmp_path / "access.log.1")
    for pid in server.worker_pids():
        os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: access.exists(), what="the log to be reopened")
    httpx.get(f"{server.url}/after")
    wait_for(lambda: "/after" in access.read_text(), what="a line in the new file")


def test_max_requests_restarts_worker(gunicorn):
    server = gunicorn("testproject.apps_server:echo", "--max-requests", "3")
    with httpx.Client() as client:
        pids = [client.get(f"{server.url}/n").json()["pid"] for _ in range(3)]
    assert len(set(pids)) == 1
    server.wait_ready(count=2)
    assert httpx.get(f"{server.url}/n").json()["pid"] != pids[0]
    assert "Autorestarting worker after current request." in server.log()


def test_worker_connections_backpressure(gunicorn):
    server = gunicorn(
        "testproject.apps_server:echo", "--worker-connections", "2", "--keep-alive", "30"
    )
    first, second = connect(server.port), connect(server.port)
    for sock in (first, second):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(sock).read().status == 200
    third = connect(server.port)
    third.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
    import select

    assert not select.select([third], [], [], 0.5)[0]  # not accepted while two are open
    first.close()
    assert Reader(third).read().status == 200
    second.close()
    third.close()


def test_parent_death_stops_worker(gunicorn):
    server = gunicorn("testproject.apps_server:echo")
    worker = server.worker_pids()[0]
    server.proc.kill()
    server.proc.wait(10)
    wait_for(lambda: not _alive(worker), timeout=15, what="the orphaned worker to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie reparented to a non-reaping init still "exists": look at its state.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_reload_restarts_on_code_change(gunicorn, tmp_path):
    module = tmp_path / "reloadable_app.py"
    module.write_text(_reload_app("first"))
    server = gunicorn(
        "reloadable_app:app", "--reload", "--chdir", str(tmp_path), "--reload-engine", "poll"
    )
    assert httpx.get(f"{server.url}/").text == "first"
    module.write_text(_reload_app("second"))
    wait_for(lambda: _get_text(server) == "second", timeout=20, what="the reloaded code")


def _get_text(server) -> str:
    try:
        return httpx.get(f"{server.url}/", timeout=5).text
    except httpx.HTTPError:
        return ""


def _reload_app(text: str) -> str:
    return (
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        f"    await send({{'type': 'http.response.body', 'body': b'{text}'}})\n"
    )
