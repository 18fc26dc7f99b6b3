"""What a node remembers of the requests it took: enough to reconcile its processing list.

A blocking take (``BLMOVE``) whose link was dropped (Redis stalled past the watchdog, a failover)
may still run once Redis resumes: it moves a request into the worker's processing list, and its
answer goes nowhere. The node looks at that list after such a drop; a request it never took is
served, one it took already is never run again (only dropped once its deadline passed).
"""

from __future__ import annotations

from ..exceptions import ProtocolError
from ..forwarding.hub import now_ms
from ..protocol.envelope import decode_connect

__all__ = ["Recent"]


class Recent:
    """The connection ids (and deadlines) of the last ``limit`` requests a node took."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._deadlines: dict[str, int] = {}  # in the order taken: the oldest go first
        self._refused: set[object] = set()

    def add(self, conn: str, deadline_ms: int) -> None:
        deadlines = self._deadlines
        deadlines[conn] = deadline_ms
        if len(deadlines) > self.limit:
            del deadlines[next(iter(deadlines))]

    def seen(self, conn: str) -> bool:
        return conn in self._deadlines

    def overdue(self, conn: str) -> bool:
        """Whether a request taken here is past its deadline (it can no longer be wanted)."""
        return self._deadlines.get(conn, 0) < now_ms()

    @staticmethod
    def conn_of(raw: bytes) -> str | None:
        """The connection id of a queued request; None for anything unreadable."""
        try:
            return decode_connect(raw).conn
        except ProtocolError:
            return None

    def first_refusal(self, version: object) -> bool:
        """True the first time requests of protocol ``version`` are refused (logged once)."""
        key = repr(version)
        if key in self._refused:
            return False
        self._refused.add(key)
        return True
