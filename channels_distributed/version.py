"""The package's version, in a module of its own: setup.cfg reads it, and modules that report
it (a process's card, the worker's banner) import it without importing the package."""

__all__ = ["__version__"]

__version__ = "0.1.0"
