"""The edge of the distributed tests (``tests/e2e/deployment.py``): the path distributor with
routes of the tests' own, configured from the test harness' environment variables:
``CD_REDIS_URL`` points at Redis (several URLs separated by spaces: sharded), ``CD_PREFIX``
sets the key prefix, ``CD_WORKER_TIMEOUT`` the seconds to wait for a worker,
``CD_QUEUE_CAPACITY`` the requests one route key may hold, ``CD_LIVE_PATH`` and
``CD_READY_PATH`` the health probes' paths, ``CD_LOG_INTERVAL`` the seconds between two lines
of one failure cause on one route key, ``CD_METRICS_PATH`` where the edge serves its
Prometheus metrics (unset: off), ``CD_SPREAD`` the spread route keys (``t=3,k-a=2``).

The project's own edge, as a Django user writes it, is ``edge_asgi.py``
(``get_edge_application()`` from ``CHANNELS_DISTRIBUTED``).
"""

import os

from channels_distributed.conf.hosts import split_urls
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
    hosts=split_urls(os.environ.get("CD_REDIS_URL", "redis://127.0.0.1:6379/0"), "CD_REDIS_URL"),
    prefix=os.environ.get("CD_PREFIX", "asgi"),
    worker_timeout=float(os.environ.get("CD_WORKER_TIMEOUT", "5")),
    queue_capacity=int(os.environ.get("CD_QUEUE_CAPACITY", "10000")),
    live_path=os.environ.get("CD_LIVE_PATH"),
    ready_path=os.environ.get("CD_READY_PATH"),
    log_interval=float(os.environ.get("CD_LOG_INTERVAL", "10")),
    metrics_path=os.environ.get("CD_METRICS_PATH"),
    spread={key: int(n) for key, _, n in (part.partition("=") for part in
                                           os.environ.get("CD_SPREAD", "").split(",") if part)},
    routes=ROUTES,
)
