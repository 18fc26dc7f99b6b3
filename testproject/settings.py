"""The settings of the tests' Django project: the demo project's
(``channels_distributed.demo.settings``, shipped in the package), which the tests, the demo and
the Django benchmark all run. Tests that need a variant write a settings module importing this
one (``from testproject.settings import *``)."""

from channels_distributed.demo.settings import *  # noqa: F403
