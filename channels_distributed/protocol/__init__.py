"""Sans-I/O parts: pure functions and dataclasses. Nothing here imports asyncio, redis or django."""
