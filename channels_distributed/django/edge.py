"""The edge of a Django project: its ``asgi.py`` is one line::

    application = get_edge_application()

served by any ASGI server (this package's gunicorn worker, uvicorn, daphne, granian). It is the
path distributor configured from ``CHANNELS_DISTRIBUTED`` (``settings.distributor_config``):
each connection goes to the route key of its path, where ``manage.py runworker`` workers run the
project. The edge runs none of the project's code: its lifespan only opens and closes its Redis
connections; static files are routed like any path (to a worker serving them the normal Django
way, e.g. WhiteNoise), or served by the front server from STATIC_ROOT.
"""

from __future__ import annotations

from ..distributor import PathDistributor

__all__ = ["get_edge_application"]


def get_edge_application() -> PathDistributor:
    """The path distributor of the project's settings (``DJANGO_SETTINGS_MODULE``).

    Like ``django.core.asgi.get_asgi_application``, it sets Django up first. A bad setting
    raises ``ConfigurationError`` naming it (``manage.py check`` reports the same).
    """
    import django
    from django.conf import settings

    from .settings import distributor_config, distributor_options

    django.setup(set_prefix=False)
    distributor_config(settings)  # the checks, with the project's names for the settings
    routes, options = distributor_options(settings)
    return PathDistributor(routes, **options)
