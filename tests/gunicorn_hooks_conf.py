"""A gunicorn config file of tests/test_gunicorn.py: the worker hooks record that they ran."""

import os


def _record(name, value):
    with open(os.path.join(os.environ["RECORD_DIR"], name), "a") as handle:
        handle.write(f"{value}\n")


def worker_int(worker):
    _record("worker_int", worker.pid)


def worker_abort(worker):
    _record("worker_abort", worker.pid)


def worker_exit(server, worker):
    _record("worker_exit", worker.pid)
