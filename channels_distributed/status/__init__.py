"""The status of a deployment: what ``channels-distributed status`` collects, prints and serves."""

from __future__ import annotations

__all__: list[str] = []
