"""``python -m engine`` — see :mod:`engine.cli`; the process around it: :mod:`engine.process`."""

from collections.abc import Callable

from engine.process import run_command


def _load() -> Callable[[], object]:
    from engine.cli import main

    return main


run_command(_load)
