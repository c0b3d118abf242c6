"""Where compiled kernels are cached: next to the package when it is writable, else the user's
cache directory, else the temporary directory; an explicit NUMBA_CACHE_DIR always wins."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import engine.jit as jit

PACKAGE = Path(jit.__file__).resolve().parent


def choose(monkeypatch: pytest.MonkeyPatch, *, package_writable: bool) -> str | None:
    real_access = os.access

    def access(path: os.PathLike[str] | str, mode: int) -> bool:
        if Path(path) == PACKAGE:
            return package_writable
        return real_access(path, mode)

    monkeypatch.setenv(jit.CACHE_ENV, "")  # unset for the choice, restored afterwards
    monkeypatch.setattr(jit.os, "access", access)
    jit._choose_cache_dir()
    return os.environ.get(jit.CACHE_ENV) or None


def test_a_writable_package_keeps_numbas_own_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose(monkeypatch, package_writable=True) is None


def test_a_read_only_package_caches_in_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert choose(monkeypatch, package_writable=False) == str(tmp_path / "optbench-numba")
    assert (tmp_path / "optbench-numba").is_dir()


def test_without_a_writable_home_the_cache_goes_to_the_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    expected = str(Path(tempfile.gettempdir()) / "optbench-numba")
    assert choose(monkeypatch, package_writable=False) == expected


def test_an_explicit_cache_dir_is_used_and_filled(tmp_path: Path) -> None:
    """A fresh process compiles a kernel into NUMBA_CACHE_DIR; a second one loads it from there."""
    code = (
        "import numpy as np\n"
        "from engine.optimizers import build_optimizer\n"
        "o = build_optimizer({'name': 'lion'}); p = np.ones((1, 3)); s = o.init(p)\n"
        "o.fast_update_(np.ones((1, 3)), s, p, 0.1)\n"
        "from engine.optimizers.fused import lion_step\n"
        "stats = lion_step.stats\n"
        "print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))\n"
    )
    env = {**os.environ, jit.CACHE_ENV: str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert any(tmp_path.rglob("*.nbi")), "the index of a cached kernel was written"
    assert first.stdout.split() == ["0", "1"]  # compiled and written
    assert second.stdout.split() == ["1", "0"]  # loaded, not compiled


def test_numbas_set_up_checks_the_blas_bindings_without_importing_scipy_linalg() -> None:
    """After :func:`engine.jit.initialise` numba has found SciPy's BLAS (its ``np.dot`` works and
    equals a sum of products), ``scipy.linalg`` has not been imported, and importing it later gives
    the package with its bindings bound as usual."""
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from engine.jit import BLAS_BINDINGS, initialise\n"
        "initialise()\n"
        "from numba.np.arraymath import _HAVE_BLAS\n"
        "print(_HAVE_BLAS, 'scipy.linalg' in sys.modules, BLAS_BINDINGS in sys.modules)\n"
        "import numba\n"
        "dot = numba.njit(lambda a, b: np.dot(a, b))\n"
        "a = np.arange(6.0).reshape(2, 3); b = np.arange(12.0).reshape(3, 4) / 7\n"
        "ref = [[sum(a[i, k] * b[k, j] for k in range(3)) for j in range(4)] for i in range(2)]\n"
        "print(np.allclose(dot(a, b), ref, rtol=1e-15, atol=0))\n"
        "import scipy.linalg.cython_blas\n"
        "bound = scipy.linalg.cython_blas is sys.modules[BLAS_BINDINGS]\n"
        "print(bound, hasattr(scipy.linalg, 'solve'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "True", "True", "True"]


@pytest.mark.parametrize("configured", [False, True])
def test_numba_reads_its_yaml_settings_only_where_the_file_is(
    tmp_path: Path, configured: bool
) -> None:
    """Without a ``.numba_config.yaml`` in the working directory numba starts without PyYAML,
    which imports as usual afterwards; with one, numba reads it (here: bounds checking on)."""
    if configured:
        (tmp_path / jit.NUMBA_CONFIG_FILE).write_text("boundscheck: 1\n")
    code = (
        "import sys\n"
        "import engine.jit\n"
        "import numba.core.config as config\n"
        "print(config._HAVE_YAML, config.BOUNDSCHECK, 'yaml' in sys.modules)\n"
        "import yaml\n"
        "print(yaml.safe_load('a: 2')['a'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    want = ["True", "1", "True"] if configured else ["False", "None", "False"]
    assert out.stdout.split() == [*want, "2"]
