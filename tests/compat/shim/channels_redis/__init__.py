"""Stand-in for the ``channels_redis`` package while channels_redis's own tests run.

The compatibility runner (``tests/compat/run_channels_redis_suite.py``) copies this package into a
temporary directory and puts it first on the pytest subprocess's ``sys.path``, so that the
upstream ``from channels_redis.core import ChannelFull, RedisChannelLayer`` imports OUR layer.
Only the public API is provided: tests that need channels_redis internals are deselected by name.
"""

__version__ = "4.3.0"
