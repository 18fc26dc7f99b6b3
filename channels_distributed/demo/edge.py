"""The edge of the demo project: the path distributor of ``CHANNELS_DISTRIBUTED``. Serve it with
any ASGI server, e.g. ``gunicorn channels_distributed.demo.edge:application -k
channels_distributed.gunicorn.ASGIWorker``; ``manage.py runworker`` workers run the project."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_distributed.demo.settings")

from ..django import get_edge_application

application = get_edge_application()
