"""The ``uitpas-async`` command, one module per command group.

``main`` builds the parser; ``reports`` holds the UiTPAS report commands,
``finam`` Finam's, ``login`` the credential commands, ``summarize`` the report
summaries, and ``output`` the progress, manifest and summary table they share.
"""

from __future__ import annotations

from uitpas_async.cli.main import main, parse_period

__all__ = ["main", "parse_period"]
