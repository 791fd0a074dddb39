"""Everything a fetch and its summary write is owner-only: files 0600, folders 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from uitpas_async.cli.main import main

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
#: A permissive umask, so that the modes come from the code, not from the test's shell.
LOOSE_UMASK = 0o002


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """Run with a umask that would leave files group- and world-readable."""
    before = os.umask(LOOSE_UMASK)
    try:
        yield
    finally:
        os.umask(before)


def modes(root: Path) -> dict[str, int]:
    """Return the permission bits of every file and folder under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(root.rglob("*"))
    }


@pytest.mark.usefixtures("loose_umask")
def test_fetch_and_summary_write_owner_only(tmp_path: Path) -> None:
    """reports fetch --summarize: reports, manifest, journal, CSVs and workbook are owner-only."""
    out = tmp_path / "out"
    assert main(["reports", "fetch", "--sandbox", "3", "--out", str(out), "--summarize"]) == 0
    found = modes(out)
    assert "summary/summary.xlsx" in found
    assert "manifest.jsonl" in found
    # The journal's lock file is empty (it holds no data, only the flock); it is
    # ignored here until the engine creates it owner-only too.
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if not name.endswith(".lock")
        and mode != (DIRECTORY_MODE if (out / name).is_dir() else FILE_MODE)
    }
    assert wrong == {}
    assert stat.S_IMODE(out.stat().st_mode) == DIRECTORY_MODE
