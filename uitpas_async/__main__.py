"""``python -m uitpas_async``: the ``uitpas-async`` command."""

from __future__ import annotations

import sys

from uitpas_async.cli import main

if __name__ == "__main__":
    sys.exit(main())
