"""A command-line process around an entry point: how it starts and how it ends.

``python -m engine`` and ``optbench`` are short processes whose fixed costs sit beside the work
itself (the README example steps for ~2 s; a worker, which pays them once per pool, does not pay
them per task). Three of those costs buy nothing in a process that ends once its command has run:

- **BLAS thread pools** that start a thread per core only to be held at one: they start with one
  (:func:`engine.threads.one_thread_from_start`), as in a worker.
- **Cyclic collections during start-up.** Importing the engine builds ~10^5 long-lived objects
  (numba's type system, pydantic's validators, the registries); each time enough of them have
  accumulated the collector walks them all again (collections took 0.08–0.28 s of the README
  example's run, 0.02 s with these objects frozen). They are neither garbage nor cycles anyone
  frees, so the collector is off while the entry point is imported; the objects then move to the
  permanent generation (:func:`gc.freeze`) and collections resume for what the command allocates.
- **Interpreter finalization.** After the output is written, a normal exit tears every module
  down and frees its objects one by one (numba's and LLVM's included): 0.1–0.4 s whose effect
  nobody sees. The process instead flushes its standard streams, runs the ``atexit`` handlers
  (logging's flush among them) as a normal exit would, and ends with :func:`os._exit`. Files the
  commands write are closed before they return; neither command starts a non-daemon thread that
  an exit would wait for.

An exception other than :class:`SystemExit` propagates: the interpreter prints its traceback and
exits as it always does.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from engine.threads import one_thread_from_start

#: Python's own exit status when flushing standard output fails at exit.
FLUSH_FAILED = 120


def exit_status(code: object) -> int:
    """The process status of ``SystemExit(code)``, as the interpreter derives it (a message
    other than a number is printed to standard error, and the status is 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_command(load: Callable[[], Callable[[], object]]) -> NoReturn:
    """Import the entry point (``load()``) with one BLAS thread and the collector off, call it,
    and end the process without finalization (see the module docstring)."""
    one_thread_from_start()
    gc.disable()
    try:
        entry = load()
    finally:
        gc.freeze()
        gc.enable()
    try:
        entry()
        status = 0
    except SystemExit as exc:
        status = exit_status(exc.code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = FLUSH_FAILED if stream is sys.stdout else status
    atexit._run_exitfuncs()
    os._exit(status)


def run_main(module: str) -> NoReturn:
    """:func:`run_command` of the ``main`` function of ``module`` (imported as :func:`run_command`
    imports an entry point)."""
    run_command(lambda: importlib.import_module(module).main)
