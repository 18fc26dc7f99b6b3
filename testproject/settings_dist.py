"""The test project with ``channels_distributed`` listed before ``channels``, so that
``manage.py runworker`` is ours (Django takes a command from the first app that has it)."""

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS

INSTALLED_APPS = ["channels_distributed", *(a for a in INSTALLED_APPS
                                            if a != "channels_distributed")]
