"""``python -m rnngeom.claims``: the claim table from the aggregate tables (``rnngeom.claims.table.main``)."""

import sys

from rnngeom.claims.table import main

if __name__ == "__main__":
    sys.exit(main())
