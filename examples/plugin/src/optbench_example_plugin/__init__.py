"""An example optbench plugin: one optimizer (``signum``) registered through an entry point."""
