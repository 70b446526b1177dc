"""``python -m vendgate`` is the same as the ``vendgate`` command."""

from vendgate.cli import main

raise SystemExit(main())
