"""The worker: ``Node`` takes forwarded connections from route keys and runs an application.

``node.py`` holds ``Node`` (taking connections, draining); ``connection.py`` one forwarded
connection, given a frozen ``WorkerContext`` (``context.py``), never the node; ``channels.py``
serves ordinary Channels channels beside them, as Channels' own ``runworker`` does.
"""

from __future__ import annotations

from .node import Node

__all__ = ["Node"]
