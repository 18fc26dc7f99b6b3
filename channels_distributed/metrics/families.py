"""Every metric the package records on its hot paths, defined once (docs/metrics.rst lists
them with their meaning). Imported only once metrics are on (``metrics.switch_on``): importing
this module imports prometheus_client.

The metrics live in a registry of the package's own (``REGISTRY``), not prometheus_client's
global one: an application's own metrics stay its own, and a process answers with the package's
figures only. Under ``PROMETHEUS_MULTIPROC_DIR`` prometheus_client keeps their values in files
of that directory instead, which ``metrics.exposition`` sums over every process.

A route key is a label: routes written with groups (``r"api-\\1"``) can make as many keys as
clients send paths, so each process labels at most ``MAX_ROUTES`` keys by name and the others
``OTHER`` (``RouteLabels``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "DURATION_BUCKETS",
    "EDGE_DURATION",
    "EDGE_FAILURES",
    "EDGE_OPEN",
    "EDGE_QUEUE_WAIT",
    "EDGE_REQUESTS",
    "LAYER_FULL",
    "LAYER_GROUP_MEMBERS",
    "LAYER_RECEIVES",
    "LAYER_SENDS",
    "MAX_ROUTES",
    "MEMBER_BUCKETS",
    "OTHER",
    "PREFIX",
    "REDIS_ERRORS",
    "REDIS_RECONNECTS",
    "REGISTRY",
    "WAIT_BUCKETS",
    "RouteLabels",
]

PREFIX = "channels_distributed_"
REGISTRY = CollectorRegistry(auto_describe=True)
MAX_ROUTES = 500
OTHER = "_other"

#: Seconds a request waits for a worker: from a Redis round trip up to long worker_timeouts.
WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0)
#: Seconds a connection lasts: HTTP requests, and WebSockets open for minutes or hours.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
MEMBER_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000)

# The edge (the path distributor) --------------------------------------------------------------
EDGE_REQUESTS = Counter(
    f"{PREFIX}edge_requests", "Connections the edge routed, by route key, kind (http or "
    "websocket) and the status its client got (none: the client left before any response)",
    ["route", "kind", "status"], registry=REGISTRY)
EDGE_QUEUE_WAIT = Histogram(
    f"{PREFIX}edge_queue_wait_seconds", "Seconds from queueing a connection on its route key "
    "until a worker accepted it (accepted connections only)", ["route"], registry=REGISTRY,
    buckets=WAIT_BUCKETS)
EDGE_DURATION = Histogram(
    f"{PREFIX}edge_request_duration_seconds", "Seconds from a connection reaching the edge "
    "until it ended (a WebSocket: until it closed)", ["route", "kind"], registry=REGISTRY,
    buckets=DURATION_BUCKETS)
EDGE_FAILURES = Counter(
    f"{PREFIX}edge_failures", "Connections the edge did not get served, by route key and cause "
    "(no_worker, busy, queue_full, redis: 503; worker_lost: 502)", ["route", "cause"],
    registry=REGISTRY)
EDGE_OPEN = Gauge(
    f"{PREFIX}edge_open_connections", "Connections open at the edge now (waiting for a worker "
    "or relayed)", registry=REGISTRY, multiprocess_mode="livesum")

# The channel layer ----------------------------------------------------------------------------
LAYER_SENDS = Counter(f"{PREFIX}layer_sends", "Messages given to the channel layer's send()",
                      registry=REGISTRY)
LAYER_RECEIVES = Counter(f"{PREFIX}layer_receives", "Messages the channel layer's receive() "
                         "returned", registry=REGISTRY)
LAYER_FULL = Counter(
    f"{PREFIX}layer_channel_full", "Messages refused because their channel was at capacity "
    "(ChannelFull raised by send(), or a group member skipped by group_send())",
    ["operation"], registry=REGISTRY)
LAYER_GROUP_MEMBERS = Histogram(
    f"{PREFIX}layer_group_send_members", "Members of the group at each group_send() (its "
    "count is the number of group sends)", registry=REGISTRY, buckets=MEMBER_BUCKETS)

# Redis, as every part of the package reaches it ----------------------------------------------
REDIS_ERRORS = Counter(
    f"{PREFIX}redis_errors", "Redis errors: connect (a connection attempt failed), lost (an open "
    "connection was dropped by Redis or the network), refused (Redis refused a command for "
    "good: an ACL, a key of another type...)", ["kind"], registry=REGISTRY)
REDIS_RECONNECTS = Counter(
    f"{PREFIX}redis_reconnects", "Times a shared command connection to a Redis server was "
    "opened again after the previous one was lost", registry=REGISTRY)


class RouteLabels:
    """Route keys as label values: at most ``MAX_ROUTES`` by name per process, then ``OTHER``."""

    def __init__(self, limit: int = MAX_ROUTES) -> None:
        self.limit = limit
        self._known: set[str] = set()

    def __call__(self, key: str) -> str:
        known = self._known
        if key in known:
            return key
        if len(known) >= self.limit:
            return OTHER
        known.add(key)
        return key
