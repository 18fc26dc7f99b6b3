"""One back-off for every loop that waits out an outage (transport/backoff.py)."""

from __future__ import annotations

import re
from pathlib import Path

import channels_distributed
from channels_distributed.transport.backoff import Backoff

PACKAGE = Path(channels_distributed.__file__).resolve().parent
DOUBLING = re.compile(r"min\(\s*\w+\s*\*\s*2\s*,")  # delay = min(delay * 2, limit)


def test_pauses_double_up_to_the_limit_and_reset() -> None:
    backoff = Backoff(0.02, 0.1)
    assert [backoff.next() for _ in range(5)] == [0.02, 0.04, 0.08, 0.1, 0.1]
    backoff.reset()
    assert backoff.next() == 0.02


def test_no_loop_doubles_its_own_delay() -> None:
    # Written out in connection.py, inbox.py, liveness.py, sentinel.py, streams.py and the
    # worker's take loop before; each now uses Backoff.
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "backoff.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if DOUBLING.search(line)]
    assert not found, "a back-off written out again:\n" + "\n".join(found)
