"""The edge: an ASGI application that forwards each connection to a worker over Redis.

``app.py`` holds ``PathDistributor`` and ``create_path_distributor``; ``edge.py`` the transport
of one event loop (queueing a connection, waiting for its worker); ``relay.py`` the relay of a
connection's events once a worker accepted it. The settings are ``conf.DistributorConfig``.
"""

from __future__ import annotations

from ..conf import DistributorConfig
from .app import PathDistributor, create_path_distributor

__all__ = ["DistributorConfig", "PathDistributor", "create_path_distributor"]
