"""``python -m evals.loadtest``: see ``evals.loadtest.run``."""

from evals.loadtest.run import main

raise SystemExit(main())
