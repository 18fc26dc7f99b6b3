"""The edge of the test project: the path distributor of ``CHANNELS_DISTRIBUTED``. Serve it with
any ASGI server, e.g. ``gunicorn testproject.edge_asgi:application -k
channels_distributed.gunicorn.ASGIWorker``; ``manage.py runworker`` workers run the project."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

from channels_distributed.django import get_edge_application

application = get_edge_application()
