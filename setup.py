"""Build: the hot path is compiled with Cython where it can be.

The modules listed in ``channels_distributed/compiled.py`` (the HTTP server and the modules of a
forwarded request: units of modules whose compiling saves at least 5% of a path's instructions)
stay ordinary, type-checked Python. The ``.pxd`` file beside a module
declares its classes as extension types with typed attributes and its functions as callable from C,
which Cython compiles into C (the HTTP server: about a third fewer instructions per request). Where
Cython or a C compiler is missing, or ``CHANNELS_DISTRIBUTED_NO_EXTENSIONS`` asks for the sources
(set to a non-empty value other than ``0``, as at run time), the build goes on without the
extensions and the same sources run as Python.
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiled_py() -> ModuleType:
    # The list and the switch live in channels_distributed/compiled.py, which the package reads
    # at run time: loaded by path (it needs nothing but the standard library), the build reads
    # both from there, so the switch means the same thing at build and at run time.
    path = Path(__file__).resolve().parent / "channels_distributed" / "compiled.py"
    spec = importlib.util.spec_from_file_location("_channels_distributed_compiled", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DIRECTIVES = {
    "language_level": 3,
    # The .pxd files alone declare C types: annotations stay what mypy reads.
    "annotation_typing": False,
}


class OptionalBuildExt(build_ext):
    """Build the extensions if possible; otherwise the pure-Python modules are used."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1  # the C compiles are independent

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, ...
            self._skip(exc)

    def build_extensions(self) -> None:
        # Cythonized only once a C compiler is known to work: without one, nothing is
        # translated for nothing, and the build says once why the sources are used.
        problem = self._compiler_problem()
        if problem:
            self._skip(problem)
            return
        from Cython.Build import cythonize

        translated = cythonize(
            self.extensions, compiler_directives=DIRECTIVES, build_dir="build/cython",
            quiet=True, nthreads=os.cpu_count() or 1,
        )
        # Each Extension now compiles its generated .c file. The objects stay setuptools' own:
        # an editable build keeps state on them (finalize_options ran before this).
        for extension, cythonized in zip(self.extensions, translated):
            extension.sources = cythonized.sources
        super().build_extensions()

    def _compiler_problem(self) -> str:
        with tempfile.TemporaryDirectory() as folder:
            probe = Path(folder, "probe.c")
            probe.write_text("#include <Python.h>\nint probe(void) { return 0; }\n")
            try:
                self.compiler.compile([str(probe)], output_dir=folder,
                                      include_dirs=self.include_dirs)
            except Exception as exc:  # CompileError, a missing compiler executable, ...
                return f"no working C compiler for Python extensions: {exc}"
        return ""

    def build_extension(self, ext: Extension) -> None:
        if self.compiler.compiler_type == "unix":
            # No debug information: Python's own CFLAGS ask for -g, which makes each module
            # ~8 times larger (a 19 MB wheel instead of ~3 MB) and a third slower to compile.
            ext.extra_compile_args = [*ext.extra_compile_args, "-g0"]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    @staticmethod
    def _skip(exc: object) -> None:
        print(
            f"channels-distributed: not compiling the hot path ({exc}); the Python sources "
            "will be used",
            file=sys.stderr,
        )


def extensions() -> list[Extension]:
    compiled = _compiled_py()
    if compiled.sources_asked_for():
        print(f"channels-distributed: not compiling the hot path ({compiled.ENV}="
              f"{os.environ[compiled.ENV]!r} asks for the sources)", file=sys.stderr)
        return []
    try:
        import Cython  # noqa: F401 - cythonized in OptionalBuildExt.build_extensions
    except ImportError:
        return []
    return [Extension(name, [name.replace(".", "/") + ".py"]) for name in compiled.COMPILED]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
