"""asyncio + Redis: the only code of the package that talks to Redis (see docs/design.rst)."""
