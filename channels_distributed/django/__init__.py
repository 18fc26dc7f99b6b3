"""Django integration: settings (``CHANNELS_DISTRIBUTED``), system checks, the edge application
and what ``manage.py runworker`` runs.

* ``settings``: CHANNELS_DISTRIBUTED and CHANNEL_LAYERS mapped onto ``conf``'s objects;
* ``checks``: ``manage.py check``'s ``channels_distributed.E001``...``E007``;
* ``edge``: ``get_edge_application()``, the one line of the edge's ``asgi.py``;
* ``worker``: the ``Node`` and start-up banner of ``manage.py runworker``.
"""

from __future__ import annotations

from .edge import get_edge_application

__all__ = ["get_edge_application"]
