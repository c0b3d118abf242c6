"""The ``optbench`` command line: a client of the service (or of the engine, with ``--local``)."""
