"""The old name of ``reader.py``, kept only while ``hub.py`` still imports ``Reader`` from it:
remove this module once ``hub.py`` imports ``from .reader import BATCH, Reader``."""

from __future__ import annotations

from .reader import BATCH, Reader

__all__ = ["BATCH", "Reader"]
