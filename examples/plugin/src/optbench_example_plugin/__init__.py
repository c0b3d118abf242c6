"""An example optbench plugin: one optimizer (``signum``) and one problem (``booth``), registered
through entry points."""
