"""The ``optbench`` command line: a client of the service (or of the engine, with ``--local``)."""

from collections.abc import Callable
from typing import NoReturn


def _load() -> Callable[[], object]:
    from client.commands import main

    return main


def run() -> NoReturn:
    """The ``optbench`` console script: :func:`client.commands.main` as a whole process (its
    start-up and exit as :mod:`engine.process` runs them)."""
    from engine.process import run_command

    run_command(_load)
