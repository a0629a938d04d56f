"""``python -m qadataswap``: the command-line tool (see :mod:`qadataswap._cli`)."""

from ._cli import main

raise SystemExit(main())
