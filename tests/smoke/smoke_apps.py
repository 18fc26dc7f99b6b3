"""Applications of the smoke suite: only what an installed package offers, no test project."""

from __future__ import annotations

import os
from typing import Any


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = f"hello from {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def edge() -> Any:
    """The path distributor, as an edge deployment would build it (``gunicorn 'mod:edge()'``)."""
    from channels_distributed.distributor import create_path_distributor

    return create_path_distributor(url=os.environ["SMOKE_REDIS_URL"], prefix="smoke",
                                   routes={"^/w/": "smoke"})
