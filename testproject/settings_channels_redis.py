"""The test project as a channels_redis user has it: ``manage.py runworker`` is ours, the channel
layer is channels_redis (route keys take its hosts and prefix, channels are served by it)."""

import os

from testproject.settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("CD_REDIS_URL", "redis://127.0.0.1:6379/0")],
                   "prefix": os.environ.get("CD_PREFIX", "asgi")},
    }
}
