"""Says which worker process served a response (``X-Served-By``): what the tests assert and
the demo prints. Sync and async capable, so that it adds no thread hop to async requests."""

import os
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.utils.decorators import sync_and_async_middleware


@sync_and_async_middleware  # type: ignore[untyped-decorator]
def served_by(get_response: Any) -> Any:
    if iscoroutinefunction(get_response):
        async def middleware(request: Any) -> Any:
            response = await get_response(request)
            response["X-Served-By"] = str(os.getpid())
            return response

        return markcoroutinefunction(middleware)

    def sync_middleware(request: Any) -> Any:
        response = get_response(request)
        response["X-Served-By"] = str(os.getpid())
        return response

    return sync_middleware
