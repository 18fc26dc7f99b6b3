"""Settings of the Django project the tests and the demo use."""

import os

SECRET_KEY = "channels-distributed-testproject-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "testproject.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "channels_distributed",
    "testproject.demo",
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

ASGI_APPLICATION = "testproject.asgi.application"

# Tests point this at their own redis-server; nothing here talks to port 6379 unless asked.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_distributed.layer.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("CD_REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CD_LOG_LEVEL", "WARNING")},
}
