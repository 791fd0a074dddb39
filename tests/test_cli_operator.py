"""The operator's CLI, through ``main``: files, layout, manifest, validation, conventions."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from uitpas_async.cli import main, parse_period
from uitpas_async.cli.args import explicit_sandbox, read_balies
from uitpas_async.cli.finam import read_accounts
from uitpas_async.cli.output import Progress
from uitpas_async.cli.reports import _ages
from uitpas_async.engine.errors import ReportTimeoutError
from uitpas_async.engine.jobs import JobEvent, JobState
from uitpas_async.engine.manifest import merge_manifest, read_manifest
from uitpas_async.xml_api.backend import ReportRequest
from uitpas_async.xml_api.models import AgeRange, PriceReason


def _manifest(directory: Path) -> list[dict[str, Any]]:
    return read_manifest(directory / "manifest.jsonl").records


def _fetch(out: Path, period: str = "2024-Q1", balies: int = 2, *more: str) -> list[str]:
    """Return the arguments of a sandbox ``reports fetch`` of ``period`` into ``out``."""
    return [
        "reports",
        "fetch",
        "--sandbox",
        str(balies),
        "--period",
        period,
        "--out",
        str(out),
        *more,
    ]


# -- files a user hands in ------------------------------------------------------------


def test_a_cp1252_semicolon_balies_file_with_a_header_and_a_repeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Excel's cp1252 and ';' are read, a header is known by its shape, repeats are named."""
    path = tmp_path / "balies.csv"
    text = "Sleutel van de balie;Naam\n1A-B;Één\n2A-B;CC De Werf, Aalst\n1A-B;again\n"
    path.write_bytes(text.encode("cp1252"))
    assert read_balies(path) == [("1A-B", "Één"), ("2A-B", "CC De Werf, Aalst")]
    err = capsys.readouterr().err
    assert "balie 1A-B is named again in balies.csv line 4 (first in balies.csv line 2)" in err


def test_tabs_and_a_bom_are_read_and_accounts_repeat_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A UTF-8 BOM and tab-separated cells work for accounts too; a repeat is reported."""
    path = tmp_path / "accounts.tsv"
    path.write_text("\ufeffaccount\tname\n123\tmain\n456\tside\n123\tmain\n", encoding="utf-8")
    assert read_accounts(path) == ["123", "456"]
    assert "account 123 is named again" in capsys.readouterr().err


def test_an_undecodable_balies_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes that are neither UTF-8 nor cp1252 give one line, exit 2, and no sandbox starts."""
    path = tmp_path / "balies.csv"
    path.write_bytes(b"KEY-\x81\x8d\n")
    code = main(["reports", "fetch", "--sandbox", "--balies", str(path), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"uitpas-async: cannot read balies file {path}: neither UTF-8 nor cp1252 text; "
        "save it as CSV UTF-8"
    ]


# -- validation before any I/O --------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--period", "2099-Q1"], "not before today"),
        (["--period", "2024-Q7"], "unknown period"),
        (["--balies", "/nonexistent/balies.csv"], "cannot read balies file"),
    ],
)
def test_bad_arguments_are_refused_before_the_sandbox_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    """A future or bad period, or a missing file, exits 2 before any server is touched."""
    code = main(["reports", "fetch", "--sandbox", "2", *arguments, "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "sandbox:" not in err
    assert not (tmp_path / "o").exists()


def test_the_current_quarter_is_refused_and_the_last_one_accepted() -> None:
    """A quarter that has not ended is not a completed period."""
    today = date(2026, 12, 1)
    with pytest.raises(ValueError, match="not before today"):
        parse_period("2026-Q4", today=today)
    assert parse_period("2026-Q3", today=today) == (date(2026, 7, 1), date(2026, 9, 30))


# -- --sandbox ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--sandbox", "5"], ["--sandbox=5"]),
        (["--sandbox"], ["--sandbox="]),
        (["price", "--sandbox", "0934000185108"], ["price", "--sandbox=", "0934000185108"]),
        (["--sandbox", "--period", "x"], ["--sandbox=", "--period", "x"]),
        (["--", "--sandbox", "3"], ["--", "--sandbox", "3"]),
    ],
)
def test_sandbox_takes_only_a_short_number_after_it(
    arguments: list[str], expected: list[str]
) -> None:
    """``--sandbox`` takes N only from a short number right after it, never a card number."""
    assert explicit_sandbox(arguments) == expected


def test_price_with_the_card_number_after_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    """``price --sandbox 0934000185108`` prices that card on a default sandbox."""
    assert main(["price", "--sandbox", "0934000185108", "--date-of-birth", "2010-01-01"]) == 0
    assert "price:" in capsys.readouterr().out


def test_a_huge_sandbox_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """N is bounded: a sandbox of thousands of balies is a usage error, not a hang."""
    with pytest.raises(SystemExit) as exit_:
        main(["reports", "fetch", "--sandbox", "5000"])
    assert exit_.value.code == 2
    assert "the sandbox holds at most 1000" in capsys.readouterr().err


# -- output layout and manifest -------------------------------------------------------


def test_runs_into_one_directory_add_up_and_summarize_totals_per_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """UiTPAS Q1, Finam Q1 and UiTPAS Q2 into one DIR: every line stays; files carry periods."""
    out = tmp_path / "out"
    assert (
        main(["reports", "fetch", "--sandbox", "2", "--period", "2024-Q1", "--out", str(out)]) == 0
    )
    finam = ["finam", "reports", "fetch", "--sandbox", "2", "--period", "2024-Q1"]
    assert main([*finam, "--out", str(out), "--rate", "1000"]) == 0
    assert (
        main(["reports", "fetch", "--sandbox", "2", "--period", "2024-Q2", "--out", str(out)]) == 0
    )
    lines = _manifest(out)
    assert sorted((line["provider"], line["period"]) for line in lines) == [
        ("finam", "2024-Q1"),
        ("finam", "2024-Q1"),
        ("uitpas", "2024-Q1"),
        ("uitpas", "2024-Q1"),
        ("uitpas", "2024-Q2"),
        ("uitpas", "2024-Q2"),
    ]
    for line in lines:
        path = Path(line["path"])
        assert path.is_file()
        assert path.stem.endswith("_" + line["period"])
        assert path.parent == out / (line.get("balie") or line["account"])
    capsys.readouterr()

    assert main(["reports", "summarize", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [period["period"] for period in summary["periods"]] == ["2024-Q1", "2024-Q2"]
    assert summary["reports"] == 4  # the Finam lines are not UiTPAS reports
    assert summary["problems"] == []


def test_fetching_again_replaces_only_that_jobs_line(tmp_path: Path) -> None:
    """A rerun of one period keeps one line per job, not a second copy."""
    out = tmp_path / "out"
    arguments = ["reports", "fetch", "--sandbox", "2", "--period", "2024-Q1", "--out", str(out)]
    assert main(arguments) == 0
    assert main([*arguments, "--journal", str(tmp_path / "other.sqlite")]) == 0
    assert len(_manifest(out)) == 2


def test_merge_keeps_other_lines_and_replaces_an_unresolved_failure(tmp_path: Path) -> None:
    """An old-format line and a failed "latest" line give way to the same owner's new line."""
    path = tmp_path / "manifest.jsonl"
    old = {"balie": "A", "start": "2024-01-01", "end": "2024-03-31", "state": "done"}
    unresolved = {"provider": "uitpas", "job_key": "B|latest", "balie": "B", "start": None}
    other = {"provider": "finam", "job_key": "1|x", "account": "1", "start": "2024-01-01"}
    path.write_text(
        "".join(json.dumps(line) + "\n" for line in (old, unresolved, other)) + "{bad\n"
    )
    new = [
        {"provider": "uitpas", "job_key": "A|2024-01-01|2024-03-31", "balie": "A",
         "start": "2024-01-01", "end": "2024-03-31", "state": "done"},
        {"provider": "uitpas", "job_key": "B|2024-01-01|2024-03-31", "balie": "B",
         "start": "2024-01-01", "end": "2024-03-31", "state": "done"},
    ]  # fmt: skip
    merged = merge_manifest(path, new)
    assert merged == [other, *new]
    read = read_manifest(path)
    assert read.records == merged
    assert len(read.problems) == 1  # the unreadable line is kept, not dropped


def test_summarize_never_reads_a_file_outside_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest line naming a path outside DIR is a problem, and the file is not read."""
    out = tmp_path / "out"
    assert (
        main(["reports", "fetch", "--sandbox", "1", "--period", "2024-Q1", "--out", str(out)]) == 0
    )
    [line] = _manifest(out)
    outside = tmp_path / "elsewhere.zip"
    Path(line["path"]).rename(outside)
    line["path"] = str(outside)
    (out / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    capsys.readouterr()
    assert main(["reports", "summarize", str(out)]) == 1
    assert f"outside {out}: not summarized" in capsys.readouterr().out


def test_report_writes_into_the_balies_folder_like_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report`` stores OUT/<balie>/<file>_<period>, the layout of ``reports fetch``."""
    assert main(["report", "--sandbox", "--period", "2024-Q1", "--out", str(tmp_path)]) == 0
    [path] = [p for p in tmp_path.rglob("*.zip")]
    assert path.parent.parent == tmp_path
    assert path.stem.endswith("_2024-Q1")
    assert str(path) in capsys.readouterr().out


def test_no_lock_file_is_left_after_a_run(tmp_path: Path) -> None:
    """``journal.sqlite.lock`` goes when the run ends."""
    assert (
        main(["reports", "fetch", "--sandbox", "1", "--period", "2024-Q1", "--out", str(tmp_path)])
        == 0
    )
    assert (tmp_path / "journal.sqlite").is_file()
    assert not (tmp_path / "journal.sqlite.lock").exists()


def test_a_second_run_says_what_it_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun says how many reports were done earlier; progress names balie and period."""
    arguments = [
        "reports",
        "fetch",
        "--sandbox",
        "2",
        "--period",
        "2024-Q1",
        "--out",
        str(tmp_path),
    ]
    assert main(arguments) == 0
    first = capsys.readouterr()
    assert "2024-Q1" in first.err
    assert "elapsed" in first.err
    assert main(arguments) == 0
    second = capsys.readouterr()
    assert "resumed: 2 done earlier, 0 to go" in second.err
    assert "(2 done earlier)" in second.out


def test_fetch_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints the run's summary as one JSON document on stdout."""
    arguments = ["reports", "fetch", "--sandbox", "2", "--period", "2024-Q1", "--json", "-q"]
    assert main([*arguments, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert (data["done"], data["failed"], data["periods"]) == (2, 0, ["2024-Q1"])
    assert data["manifest"] == str(tmp_path / "manifest.jsonl")
    assert captured.err == ""  # -q: no progress, no notes


@pytest.mark.parametrize("api", [[], ["--api", "4"]], ids=["xml", "4.0"])
def test_fetch_summarize_json_is_one_document(
    api: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--summarize --json`` prints one JSON document: the fetch, with the totals under summary."""
    arguments = ["reports", "fetch", *api, "--sandbox", "2", "--period", "2024-Q1"]
    assert main([*arguments, "--summarize", "--json", "-q", "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["done"], data["failed"]) == (2, 0)
    assert data["summary"]["reports"] == 2
    assert [period["period"] for period in data["summary"]["periods"]] == ["2024-Q1"]
    assert data["summary"]["written_to"] == str(tmp_path / "summary")


# -- periods and price ----------------------------------------------------------------


def test_periods_print_what_period_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """Every first column of ``periods`` parses as a --period; --json has the same."""
    assert main(["periods", "--sandbox"]) == 0
    firsts = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert firsts
    for first in firsts:
        assert parse_period(first) is not None
    assert main(["periods", "--sandbox", "--json"]) == 0
    assert [row["period"] for row in json.loads(capsys.readouterr().out)] == firsts


@pytest.mark.parametrize(
    ("ages", "text"),
    [
        (AgeRange(None, 17), "up to 17"),
        (AgeRange(18, None), "18 and older"),
        (AgeRange(12, 17), "12 to 17"),
        (AgeRange(None, None), None),
    ],
)
def test_price_ages_read_as_words(ages: AgeRange, text: str | None) -> None:
    """Age ranges are words, never ``-17``."""
    assert _ages(ages) == text


def test_price_reasons_any_case_and_unknown_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A lowercase reason works; an unknown one exits 2 listing all seven, sending nothing."""
    card = ["price", "0934000185108", "--sandbox", "--date-of-birth", "2010-01-01"]
    assert main([*card, "--reason", "card_upgrade", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == "CARD_UPGRADE"
    with pytest.raises(SystemExit):
        main([*card, "--reason", "birthday"])
    err = capsys.readouterr().err
    assert all(reason.value in err for reason in PriceReason)
    assert "sandbox:" not in err


# -- conventions ----------------------------------------------------------------------


def test_bare_command_shows_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``uitpas-async`` alone prints the help and exits 0."""
    assert main([]) == 0
    assert "examples:" in capsys.readouterr().out


def test_a_group_without_its_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``uitpas-async reports`` shows its commands; no argparse internals in the message."""
    assert main(["reports"]) == 2
    err = capsys.readouterr().err
    assert "fetch" in err
    assert "summarize" in err
    assert "reports_command" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_and_quiet_work_before_or_after_the_command(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-q`` silences progress wherever it stands."""
    command = ["reports", "fetch", "--sandbox", "1", "--period", "2024-Q1", "--out", str(tmp_path)]
    arguments = ["-q", *command] if where == "before" else [*command, "-q"]
    assert main(arguments) == 0
    assert capsys.readouterr().err == ""


def test_finam_help_shows_only_finams_options(capsys: pytest.CaptureFixture[str]) -> None:
    """``finam reports fetch --help`` has no UiTPAS --env, and its sandbox holds accounts."""
    with pytest.raises(SystemExit):
        main(["finam", "reports", "fetch", "--help"])
    text = capsys.readouterr().out
    assert "--env" not in text
    assert "balies" not in text
    assert "N accounts" in text
    assert "(default: 20)" in text  # defaults are shown
    assert "examples:" in text


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command's help shows an example."""
    for command in (["periods"], ["price"], ["report"], ["reports", "fetch"], ["login"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "example" in capsys.readouterr().out, command


def test_python_dash_m_and_completion_work() -> None:
    """``python -m uitpas_async`` runs the CLI; ``completion bash`` prints a script."""
    run = subprocess.run(
        [sys.executable, "-m", "uitpas_async", "completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "reports" in run.stdout
    assert "--max-in-flight" in run.stdout


def test_whoami_json_masks_the_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """``whoami --json`` names the environment and consumer key; no secret is in it."""
    from uitpas_async.xml_api.sandbox import SANDBOX_CREDENTIALS

    assert main(["whoami", "--sandbox", "--json"]) == 0
    text = capsys.readouterr().out
    data = json.loads(text)
    assert data["consumer_key"] == SANDBOX_CREDENTIALS.consumer_key
    assert SANDBOX_CREDENTIALS.token_secret not in text
    assert SANDBOX_CREDENTIALS.consumer_secret not in text
    assert data["token"] != SANDBOX_CREDENTIALS.token


# -- progress in a terminal -------------------------------------------------------------


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, so the progress bar draws on it."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_a_failure_when_it_happens() -> None:
    """In a terminal a failed job prints its line above the bar at once, not only at the end."""
    terminal = _Terminal()
    request = ReportRequest("KEY-1", date(2024, 1, 1), date(2024, 3, 31), name="Bib [bold]Gent")
    failure = ReportTimeoutError("report 7 not completed within 60s (12 polls)")
    with Progress(2, stream=terminal) as progress:
        progress(JobEvent(0, request, JobState.QUEUED, JobState.GENERATING, report_id="7"))
        progress(JobEvent(0, request, JobState.GENERATING, JobState.FAILED, "7", error=failure))
        shown_while_running = terminal.getvalue()
    assert "failed" in shown_while_running
    assert "Bib [bold]Gent (KEY-1)" in shown_while_running  # printed as text, never as rich markup
    assert "not completed within 60s" in shown_while_running
