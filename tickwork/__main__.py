"""``python -m tickwork``: the ``tickwork`` command (see :mod:`tickwork.cli`)."""

from tickwork.cli import main

raise SystemExit(main())
