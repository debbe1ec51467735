"""``python -m benchmarks``: the harness (benchmarks/run.py)."""

from benchmarks.run import main

raise SystemExit(main())
