"""A hot route key spread over several sub-queues in different hash slots, sans-I/O.

Every key of a route shares the hash tag ``{rt:<key>}``, so on Redis Cluster one primary carries
a whole route. A spread of ``n`` gives the route ``n`` sub-queues. Sub-queue 0 is the route key
itself (a spread of 1 is the plain route); sub-queue ``i`` (1 <= i < n) is the internal name
``<key>~<n>.<i>.<c>``, whose own hash tag ``{rt:<key>~<n>.<i>.<c>}`` puts its queue, processing
lists, registry and given-up marks in one slot of their own. ``~`` is not a character of route
keys (``[A-Za-z0-9._-]``), so an internal name never equals a key a route can resolve to.

The slots are spread evenly: the slot space is cut into ``n`` equal ranges, sub-queue 0 lies in
one of them, and ``c`` is the smallest counter that puts sub-queue ``i`` in the ``i``-th range
after it. A cluster made by ``redis-cli --cluster create`` with ``n`` primaries gives each
primary one such range, so the ``n`` sub-queues land on ``n`` different primaries; several
plain servers split the slots the same way (``transport/topology.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from .keys import SLOTS, key_slot

__all__ = ["MARK", "MAX_SPREAD", "covering", "logical_key", "slot_range", "sub_queues"]

#: The most sub-queues one route key may have: beyond a cluster's usual primaries, and few
#: enough for a worker to look at each once a second (``worker/spread.py``).
MAX_SPREAD = 16
MARK = "~"  # never in a route key: joins a key to the rest of an internal name


def slot_range(index: int, n: int) -> tuple[int, int]:
    """The slots ``[start, end)`` of the ``index``-th of ``n`` equal ranges."""
    return index * SLOTS // n, (index + 1) * SLOTS // n


def _range_of(slot: int, n: int) -> int:
    # The inverse of slot_range: the range holding ``slot`` (integer bounds, so no rounding
    # can put a slot in a neighbour's range).
    index = slot * n // SLOTS
    while slot < slot_range(index, n)[0]:
        index -= 1
    while slot >= slot_range(index, n)[1]:
        index += 1
    return index


@functools.lru_cache(maxsize=1024)
def sub_queues(key: str, n: int) -> tuple[str, ...]:
    """The internal names of the ``n`` sub-queues of route ``key``, sub-queue 0 first (the key
    itself). Their hash tags (``rt:<name>``) fall in ``n`` different slot ranges."""
    if not 1 <= n <= MAX_SPREAD:
        raise ValueError(f"a spread is 1 to {MAX_SPREAD}, not {n}")
    names = [key]
    first = _range_of(key_slot(f"rt:{key}"), n)
    for i in range(1, n):
        start, end = slot_range((first + i) % n, n)
        counter = 0
        # CRC16 is uniform enough that a range of 1/n of the slots is found in about n tries.
        while not start <= key_slot(f"rt:{key}{MARK}{n}.{i}.{counter}") < end:
            counter += 1
        names.append(f"{key}{MARK}{n}.{i}.{counter}")
    return tuple(names)


def covering(key: str, spreads: Iterable[int]) -> frozenset[str]:
    """Every sub-queue of ``key`` under any of ``spreads`` (edges may use several at once,
    during a change): what its workers take from. The key itself is always one."""
    names = {key}
    for n in spreads:
        names.update(sub_queues(key, n))
    return frozenset(names)


def logical_key(name: str) -> str:
    """The route key a sub-queue's internal name belongs to (a route key: itself)."""
    return name.partition(MARK)[0]
