"""The ``uitpas-async`` command, one module per command group.

``main`` builds the parser and runs a command; ``reports`` holds the UiTPAS XML API
commands (``periods``, ``price``, ``report``, ``reports fetch``), ``finam`` Finam's,
``login`` the credential commands, ``summarize`` the report summaries and ``sandbox``
the sandbox server and ``completion`` the shell completion scripts. What they share:
``args`` (argument types, periods, files of keys, the help format, -v/-q, --sandbox),
``output`` (messages, progress, manifest lines, summary, --json, exit codes),
``batch`` (the options and the run of every provider's ``reports fetch``, with its
early stop) and ``target`` (where a UiTPAS XML API command goes). The manifest itself
is read and merged by :mod:`uitpas_async.engine.manifest`.
"""

from __future__ import annotations

from uitpas_async.cli.args import parse_period
from uitpas_async.cli.main import main

__all__ = ["main", "parse_period"]
