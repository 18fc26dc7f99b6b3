"""How a side's table is written and read: rows, ignore rows with their reasons, and the compiled
form a machine reads once per event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from .names import Action, Event, Output, Side, State

__all__ = ["Compiled", "Ignore", "Row", "Rows", "Table", "ignore"]


@dataclass(frozen=True, slots=True)
class Row:
    """In a state, an event moves the machine to ``next`` and asks for ``actions``, in order."""

    next: State
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignore:
    """In a state, an event changes nothing: a late arrival of a race, for ``reason``."""

    reason: str


Rows: TypeAlias = "dict[tuple[State, Event], Row | Ignore]"


def ignore(states: Iterable[State], events: Iterable[Event], reason: str) -> Rows:
    """Ignore rows for every pair of ``states`` and ``events``, all for one ``reason``."""
    events = tuple(events)
    return {(state, event): Ignore(reason) for state in states for event in events}


# A compiled row: (next state, actions, the timer entering it starts or None, whether that timer
# is the one running already, which then runs on); None for an ignore row.
Compiled: TypeAlias = "tuple[State, tuple[Action, ...], str | None, bool] | None"


class Table:
    """One side's rows, checked and compiled: state -> event -> compiled row."""

    def __init__(self, side: Side, states: Iterable[State], rows: Iterable[Rows],
                 timers: dict[State, str], output: dict[State, Output]) -> None:
        self.side = side
        self.states = tuple(states)
        self.rows: Rows = {}
        for part in rows:
            for pair in part:
                if pair in self.rows:
                    raise ValueError(f"{side.value} machine: ({pair[0].value}, "
                                     f"{pair[1].value}) is written twice")
            self.rows.update(part)
        self.timers = timers
        self.output = output
        missing = [state for state in self.states if state not in output]
        if missing:
            raise ValueError(f"{side.value} machine: no output for {missing}")
        self.compiled: dict[State, dict[Event, Compiled]] = {state: {} for state in self.states}
        for (state, event), row in self.rows.items():
            if isinstance(row, Ignore):
                self.compiled[state][event] = None
                continue
            timer = timers.get(row.next)
            self.compiled[state][event] = (row.next, row.actions, timer,
                                           timer is not None and timers.get(state) == timer)
