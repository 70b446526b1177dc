"""Subcommands of the ``vendgate`` command line, one module each."""
