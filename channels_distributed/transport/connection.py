"""The old name of ``topology.py``, kept only while ``hub.py`` still imports ``Shard`` from it:
remove this module once ``hub.py`` imports ``from .topology import Shard``."""

from __future__ import annotations

from .topology import Shard, Topology

__all__ = ["Shard", "Topology"]
