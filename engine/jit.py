"""Compiled kernels: numba's ``njit`` with the engine's settings, and where its cache lives.

Every compiled kernel uses ``error_model='numpy'`` (division by zero gives inf/nan as in NumPy,
no exception checks in the loops), ``cache=True`` (machine code is written next to the module or
in :data:`CACHE_ENV`, so a process compiles a kernel once per installation, not once per start)
and no ``fastmath``: IEEE semantics, no reassociation and no FMA contraction, so a compiled loop
rounds exactly as the NumPy expression it replaces.

Where the package directory is read-only (an installed wheel, a container) numba falls back to a
per-user cache directory; when that is not writable either (a worker without a home), the cache
goes to a directory under the system's temporary directory instead of failing at import.
"""

from __future__ import annotations

import gc
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

CACHE_ENV = "NUMBA_CACHE_DIR"


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def _choose_cache_dir() -> None:
    """Set :data:`CACHE_ENV` when neither the package directory nor the user cache is writable."""
    if os.environ.get(CACHE_ENV):
        return
    if os.access(Path(__file__).resolve().parent, os.W_OK):
        return
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "optbench-numba"
    chosen = user if _writable(user) else Path(tempfile.gettempdir()) / "optbench-numba"
    os.environ[CACHE_ENV] = str(chosen)


#: The file through which numba reads settings with PyYAML, from the working directory.
NUMBA_CONFIG_FILE = ".numba_config.yaml"


@contextmanager
def _no_yaml_unless_configured() -> Iterator[None]:
    """numba imports PyYAML, when installed, for one purpose: reading :data:`NUMBA_CONFIG_FILE`
    as it starts. Without that file the import buys nothing and costs ~8 ms of every process's
    start, so for the duration of the block ``import yaml`` fails (numba then notes PyYAML as
    missing); afterwards it imports as usual. With the file, or PyYAML already imported, nothing
    changes."""
    if "yaml" in sys.modules or os.path.exists(NUMBA_CONFIG_FILE):
        yield
        return
    sys.modules["yaml"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if "yaml" in sys.modules and sys.modules["yaml"] is None:
            del sys.modules["yaml"]


_choose_cache_dir()

with _no_yaml_unless_configured():
    import numba  # after the cache directory is chosen

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """``numba.njit`` with the engine's settings (see the module docstring)."""
    return numba.njit(error_model="numpy", cache=True)(fn)  # type: ignore[return-value]


def njit_inline(fn: F) -> F:
    """:func:`njit` inlined into its callers by numba (``inline="always"``): for the small helpers
    of a compiled loop, where a call per element would cost more than the helper itself."""
    return numba.njit(error_model="numpy", cache=True, inline="always")(fn)  # type: ignore[return-value]


def inline(fn: F) -> F:
    """A small helper of the kernels, inlined into each caller by numba (``inline='always'``)
    instead of compiled and linked as a function of its own per signature: the same code, less
    compile time (Adam's kernel: about 0.3 s less per dtype on a cold cache)."""
    return numba.njit(inline="always", error_model="numpy")(fn)  # type: ignore[return-value]


@njit
def _identity(x):
    return x


#: SciPy's BLAS bindings, whose import numba's set-up checks (see :func:`initialise`).
BLAS_BINDINGS = "scipy.linalg.cython_blas"


@contextmanager
def _blas_bindings_alone() -> Iterator[None]:
    """:data:`BLAS_BINDINGS` imported without running ``scipy.linalg/__init__.py``, for the
    duration of the block; afterwards it leaves ``sys.modules``, so that a later ``import
    scipy.linalg.cython_blas`` runs the package and binds the module to it as usual. Where SciPy
    or the module is not found, or ``scipy.linalg`` is already imported, nothing changes."""
    scipy = sys.modules.get("scipy")  # numba imports it to check its version
    if scipy is None or BLAS_BINDINGS in sys.modules or "scipy.linalg" in sys.modules:
        yield
        return
    folders = [os.path.join(folder, "linalg") for folder in scipy.__path__]
    spec = importlib.machinery.PathFinder.find_spec(BLAS_BINDINGS, folders)
    if spec is None or spec.loader is None:
        yield
        return
    sys.modules[BLAS_BINDINGS] = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(sys.modules[BLAS_BINDINGS])
        yield
    finally:
        sys.modules.pop(BLAS_BINDINGS, None)


def initialise() -> None:
    """Set numba's compiler up now, by loading (or, once, compiling) a trivial kernel.

    Loading any kernel first builds numba's typing and target contexts — its registries, and a
    check that SciPy's BLAS bindings import. Python would import them after the package
    ``scipy.linalg`` (0.15–0.2 s, most of it SciPy's array-API layer touching NumPy's lazy
    submodules, ``numpy.f2py`` among them); the bindings are an extension module that needs
    nothing of its package, so they are loaded alone for the check (~2 ms,
    :func:`_blas_bindings_alone`). Numba still checks their integer width, and a kernel that
    calls BLAS through numba imports them as usual when it first runs.

    A process that forks workers calls this before forking, so that each child inherits the
    contexts instead of paying for them in its first task; a command-line run calls it before
    its first kernel.

    The set-up builds ~6·10^4 objects that live as long as the process; the cyclic collector would
    walk them repeatedly while they are built (~8 ms of the README example's run), so it is off
    meanwhile, and they then join the permanent generation (:func:`gc.freeze`, as
    :mod:`engine.process` does for the imports, and as a process about to fork should).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        with _blas_bindings_alone():
            _identity(0.0)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
