"""The edge application of the tests and the demo: the path distributor, configured from env.

``CD_REDIS_URL`` points at Redis, ``CD_PREFIX`` sets the key prefix, ``CD_WORKER_TIMEOUT`` the
seconds to wait for a worker, ``CD_QUEUE_CAPACITY`` the requests one route key may hold.
"""

import os

from channels_distributed.distributor import create_path_distributor

ROUTES = {
    "^/ws/": "t",  # WebSocket tests
    "^/t/": "t",  # HTTP tests: testproject.workers.app dispatches on the rest of the path
    "^/k/([a-z0-9]+)/": r"k-\1",  # a key of the test's own
    "^/x/(.*)$": r"\1",  # the client picks the key: only valid names get through
    "^/named/(?P<team>[a-z]+)": r"team-\g<team>",
    "^/hello/": "django",  # the test project's Django view, served by manage.py runworker
}

app = create_path_distributor(
    url=os.environ.get("CD_REDIS_URL", "redis://127.0.0.1:6379/0"),
    prefix=os.environ.get("CD_PREFIX", "asgi"),
    worker_timeout=float(os.environ.get("CD_WORKER_TIMEOUT", "5")),
    queue_capacity=int(os.environ.get("CD_QUEUE_CAPACITY", "10000")),
    routes=ROUTES,
)
