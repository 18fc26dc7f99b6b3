"""The forwarded connection's lifecycle: one strict machine per side, sans-I/O.

``names.py`` names the sides, states, events, actions, what output does in each state and what
each failure means; ``edge.py`` and ``worker.py`` hold each side's table (rows, and ignore rows
with their reasons); ``table.py`` how tables are written and compiled; ``machine.py`` the
``Forwarding`` machine, which raises ``UnexpectedEvent`` for a pair its table does not name. The
shells that carry out the actions are ``channels_distributed.forwarding`` (hub and peer), the
distributor's edge and relay, and the worker's connections.
"""

from .edge import EDGE_EVENTS, EDGE_STATES, EDGE_TABLE
from .machine import TABLES, Forwarding, UnexpectedEvent, stray_actions
from .names import FAILURES, Action, Event, Failure, Output, Side, State
from .table import Ignore, Row, Table
from .worker import WORKER_EVENTS, WORKER_STATES, WORKER_TABLE

__all__ = [
    "EDGE",
    "EDGE_EVENTS",
    "EDGE_STATES",
    "EDGE_TABLE",
    "FAILURES",
    "TABLES",
    "WORKER",
    "WORKER_EVENTS",
    "WORKER_STATES",
    "WORKER_TABLE",
    "Action",
    "Event",
    "Failure",
    "Forwarding",
    "Ignore",
    "Output",
    "Row",
    "Side",
    "State",
    "Table",
    "UnexpectedEvent",
    "stray_actions",
]

EDGE = Side.EDGE
WORKER = Side.WORKER
