"""A gunicorn config file of tests/test_gunicorn.py: pre_request/post_request record each call."""

import json
import os


def _record(name, value):
    with open(os.path.join(os.environ["RECORD_DIR"], name), "a") as handle:
        handle.write(json.dumps(value, separators=(",", ":")) + "\n")


def pre_request(worker, req):
    tag = dict(req.headers).get("X-TAG")
    _record("pre_request", [worker.pid, req.method, req.path, req.uri, list(req.version), tag])


def post_request(worker, req, environ, resp):
    _record(
        "post_request",
        [req.method, req.uri, environ["REQUEST_METHOD"], environ["QUERY_STRING"], resp.status],
    )
