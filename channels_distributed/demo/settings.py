"""Settings of the demo project (``channels-distributed demo``), which the tests and the Django
benchmark run too (``testproject/settings.py`` imports them): a small real project (database
sessions, auth and admin, CSRF, templates, static files, the Channels tutorial chat) whose edge
(``channels_distributed.demo.edge``) and workers (``manage.py runworker``) run it distributed.

Three environment variables are the test harness' and the demo's own (a project of yours writes
its values here instead):

* ``CD_REDIS_URL``: the redis-server a test or the demo started (never port 6379 unless asked),
  or several separated by spaces (sharded), or a ``redis+sentinel://`` URL;
* ``CD_PREFIX``: the key prefix of that run, so that runs sharing a Redis do not meet;
* ``CD_DB``: the SQLite file every process of a run shares (the harness migrates it first;
  default ``demo.sqlite3`` in the current directory).

By hand, wherever the package is installed with its ``[demo]`` extra, with a redis-server on
localhost:6379 (``channels-distributed demo`` does this on a private one)::

    export DJANGO_SETTINGS_MODULE=channels_distributed.demo.settings
    django-admin prepare --admin-password secret
    gunicorn channels_distributed.demo.edge:application -k channels_distributed.gunicorn.ASGIWorker
    django-admin runworker chat tasks
    django-admin runworker api site
"""

import os

# A demo served on the loopback interface: its key is no secret.
SECRET_KEY = "channels-distributed-demo-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "channels_distributed.demo.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before "channels": Django takes `manage.py runworker` from the first app that has one
    # (channels_distributed.E005 says so when the order is wrong).
    "channels_distributed",
    "channels",
    "channels_distributed.demo",
]

MIDDLEWARE = [
    "channels_distributed.demo.middleware.served_by",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's styles) from the workers, as the README's quick start does.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# One file shared by the edge's workers: sessions, users and tasks written by one worker
# process are read by the others. The timeout rides out another process's write lock.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CD_DB", "demo.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

STATIC_URL = "static/"
# WhiteNoise serves the apps' static files where they are installed: no collectstatic for the
# demo (a project of yours runs collectstatic into STATIC_ROOT instead).
WHITENOISE_USE_FINDERS = True

# The workers run this; the edge runs channels_distributed.demo.edge (get_edge_application()).
ASGI_APPLICATION = "channels_distributed.demo.asgi.application"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_distributed.layer.RedisChannelLayer",
        "CONFIG": {
            "hosts": os.environ.get("CD_REDIS_URL", "redis://127.0.0.1:6379/0").split(),
            "prefix": os.environ.get("CD_PREFIX", "asgi"),
        },
    }
}

# Which worker serves what: the chat (pages and sockets) on one route key, the API on another,
# the rest of the site on a third. `manage.py runworker chat tasks` and `manage.py runworker
# api site` put them in two processes. The chat socket is also under /api/ so that two
# clients of one room can be sent to different workers (the tests and the demo do).
CHANNELS_DISTRIBUTED = {
    "ROUTES": [
        ("^/chat/", "chat"),
        ("^/ws/chat/", "chat"),
        ("^/api/", "api"),
        ("^/", "site"),
    ],
    "LAYER": "default",
    "WORKER_TIMEOUT": 5,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "console"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # The workers' start, drain and stop (INFO); the package's warnings and errors come anyway.
    "loggers": {"channels_distributed": {"level": "INFO"}},
}
