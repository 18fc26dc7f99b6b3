"""The demo (``channels-distributed demo``): a small Django project, shipped in the package so
that it runs wherever the package is installed, and what runs it distributed.

* ``run``: Redis, the edge and two ``manage.py runworker`` workers, then ``tour``'s visit;
* the project: ``settings``, ``urls``, ``asgi`` (what the workers run), ``edge`` (the edge's
  ``get_edge_application()``), and this package as its Django app (label ``demo``): ``models``,
  ``views``, ``consumers`` (the Channels tutorial chat, background tasks), ``routing``,
  ``middleware``, ``admin``, templates and migrations, and ``manage.py prepare``.

The test suite runs the same project (``testproject/settings.py`` imports these settings).
Nothing here is imported by the rest of the package: it needs the ``[demo]`` extra.
"""
