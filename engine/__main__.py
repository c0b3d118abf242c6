"""``python -m engine`` — see :mod:`engine.cli`; the process around it: :mod:`engine.process`."""

from engine.process import run_main

run_main("engine.cli")
