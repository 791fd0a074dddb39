"""The benchmark harness runs end to end at tiny N and writes its JSON (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENTS = {"uitpas_async", "async-fixed", "async-exponential", "sync-sequential"}


def test_smoke_run_writes_the_expected_json(tmp_path: Path) -> None:
    """`python -m benchmarks --smoke` exits 0 and its JSON holds every row and scenario."""
    out = tmp_path / "smoke.json"
    readme = REPO_ROOT / "benchmarks" / "README.md"
    readme_before = readme.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "benchmarks", "--smoke", "--no-readme", "--json", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {"micro", "no_rate_limit", "rate_limited", "memory", "rows", "machine"} <= set(data)
    assert [row["row"] for row in data["rows"]] == list(range(1, 10))
    assert {"verdict", "figure", "target"} <= set(data["rows"][0])
    assert {"signer", "status_call", "capacity"} <= set(data["micro"])
    assert data["micro"]["signer"]["identical"] is True
    for scenario in ("no_rate_limit", "rate_limited"):
        assert set(data[scenario]) == CLIENTS
        ours = data[scenario]["uitpas_async"]
        assert ours["done"] == ours["jobs"]
        assert ours["auth_failures"] == 0
        assert {"makespan_over_lb", "lag_p95", "polls_median", "requests"} <= set(ours)
    assert data["memory"]["points"]
    # Issue 12: the UiTPAS API 4.0 scenario, through its own sandbox process.
    for scenario in ("no_rate_limit", "rate_limited"):
        v4 = data["v4"][scenario]
        assert v4["client"] == "uitpas_async-v4"
        assert v4["done"] == v4["jobs"] == v4["reports"]
        assert v4["duplicate_creates"] == 0
        assert v4["token_renewals"] >= 1
        assert v4["tokens_issued"] == v4["token_renewals"]
        assert {"makespan_over_lb", "lag_p95", "polls_median", "requests_per_job"} <= set(v4)
    assert readme.read_bytes() == readme_before
