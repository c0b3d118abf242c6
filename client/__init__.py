"""The ``optbench`` command line: a client of the service (or of the engine, with ``--local``)."""

from typing import NoReturn


def run() -> NoReturn:
    """The ``optbench`` console script: :func:`client.commands.main` as a whole process (its
    start-up and exit as :mod:`engine.process` runs them)."""
    from engine.process import run_main

    run_main("client.commands")
