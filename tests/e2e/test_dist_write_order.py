"""What leaves first: a response made at once goes to Redis before the worker's next take.

The worker re-sends its blocking take (BLMOVE) after each request it takes. Sent first, that
write delays the response behind it, on the request's critical path; the worker lets the
connections it just started write before it takes again. Redis MONITOR shows the order.
"""

from __future__ import annotations

import httpx
from deployment import Deployment
from helpers import wait_for
from monitor import Monitor, arguments, command_name


def test_response_leaves_before_the_next_take(private: Deployment) -> None:
    url = private.edge()
    private.worker("k-order")
    queue = f"{private.prefix}:{{rt:k-order}}:q"
    with Monitor(private.redis.port) as monitor:
        for _ in range(5):
            response = httpx.get(f"{url}/k/order/hello", timeout=30)
            assert response.status_code == 200
        # The worker takes again after the last response: wait until that take is in.
        wait_for(lambda: _after_last_push(monitor.commands(private.prefix), queue),
                 what="the worker's take after the last request")
        lines = monitor.commands(private.prefix)
    pushes = [i for i, line in enumerate(lines) if _is_push_to(line, queue)]
    assert len(pushes) == 5
    for start in pushes:
        # The worker's next command after a request reached the queue: its acknowledged push
        # (EVALSHA on its processing list and the edge's inbox), not the next BLMOVE.
        following = [line for line in lines[start + 1:]
                     if command_name(line) in ("BLMOVE", "EVALSHA")
                     and f'"{private.prefix}:{{rt:k-order}}:p:' in line]
        assert following, "the worker never answered"
        assert command_name(following[0]) == "EVALSHA", following[:2]


def _is_push_to(line: str, queue: str) -> bool:
    # The distributor's push: EVALSHA <sha> 1 <queue> <capacity> <ttl> <entry>.
    return command_name(line) == "EVALSHA" and arguments(line)[3:4] == [queue]


def _after_last_push(lines: list[str], queue: str) -> bool:
    pushes = [i for i, line in enumerate(lines) if _is_push_to(line, queue)]
    return len(pushes) == 5 and any(command_name(line) == "BLMOVE"
                                    for line in lines[pushes[-1] + 1:])
