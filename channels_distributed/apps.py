"""The Django app: ``"channels_distributed"`` in INSTALLED_APPS gives ``manage.py runworker``
and the system checks of ``channels_distributed.django.checks``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ChannelsDistributedConfig"]


class ChannelsDistributedConfig(AppConfig):  # type: ignore[misc]
    name = "channels_distributed"
    verbose_name = "Channels Distributed"

    def ready(self) -> None:
        from .django.checks import register

        register()
