"""Build: the HTTP server's hot path is compiled with Cython where it can be.

``channels_distributed/server/{flow,head,cycle,http,server}.py`` stay ordinary, type-checked
Python; the ``.pxd`` file beside each declares its classes as extension types with typed
attributes, and its functions as callable from C, which Cython compiles into C (about a third
fewer instructions per request). Where Cython or a C compiler is missing, or
``CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1`` is set, the build goes on without the extensions and the
same sources run as Python.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

COMPILED = ("flow", "head", "cycle", "http", "server")
DIRECTIVES = {
    "language_level": 3,
    # The .pxd files alone declare C types: annotations stay what mypy reads.
    "annotation_typing": False,
}


class OptionalBuildExt(build_ext):
    """Build the extensions if possible; a failure leaves the pure-Python modules in use."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, ...
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    @staticmethod
    def _skip(exc: BaseException) -> None:
        print(
            f"channels-distributed: building the compiled server failed ({exc}); "
            "the pure-Python server will be used",
            file=sys.stderr,
        )


def extensions() -> list[Extension]:
    if os.environ.get("CHANNELS_DISTRIBUTED_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    modules = [
        Extension(f"channels_distributed.server.{name}", [f"channels_distributed/server/{name}.py"])
        for name in COMPILED
    ]
    return cythonize(
        modules, compiler_directives=DIRECTIVES, build_dir="build/cython", quiet=True
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
