"""Row 1's instruction breakdown: its arithmetic on fake counts, and a clean skip without valgrind.

A real run under callgrind takes about half a minute, so it is not made here.
"""

from __future__ import annotations

import pytest

from benchmarks import instructions, row1

#: Instructions per call, made up so that every figure is easy to check by hand.
FAKE = {
    "bare": 300_000.0,
    "signed": 600_000.0,
    "bare_signing": 315_000.0,
    "transport": 333_000.0,
    "pipeline": 15_000.0,
    "xmltodict": 120_000.0,
    "check": 135_000.0,
    "signature": 60_000.0,
    "parse_status": 30_000.0,
    "build_prepare": 15_000.0,
}


def test_per_call_takes_the_second_run_less_the_first_and_the_empty_loop() -> None:
    """Each kind is (x2 - x1) / calls, less its shape's empty loop; the loops are left out."""
    loops = {instructions.AWAITED_LOOP: 1_000, instructions.PLAIN_LOOP: 100}
    totals: list[int] = []
    for kinds in (instructions.AWAITED_KINDS, instructions.PLAIN_KINDS):
        loop = loops[kinds[-1]]
        for name in kinds:
            each = int(FAKE.get(name, 0)) + loop
            # Warm-up and whatever came before it, then 10 and 20 calls (+5: the marker).
            totals += [7_777_777, 10 * each + 5, 20 * each + 5]
    assert instructions.per_call(totals, 10) == FAKE


def test_per_call_refuses_a_dump_count_that_does_not_match() -> None:
    """A stray dump (something else called the marker) is an error, not a shifted table."""
    with pytest.raises(RuntimeError, match="dumps"):
        instructions.per_call([1] * 37, 10)


def test_breakdown_accounts_for_the_whole_call() -> None:
    """The pieces and the rest add up to the signed call less the bare GET."""
    pieces = instructions.breakdown(FAKE)
    assert [piece.label for piece in pieces[:2]] == [
        "bare GET (aiohttp)",
        "signed status call (get_financial_report_status)",
    ]
    top = [piece.instructions for piece in pieces if piece.depth == 1]
    assert sum(top) == FAKE["signed"] - FAKE["bare"]
    # check, signature, status parse, build + prepare, pipeline, transport over the bare GET.
    assert pieces[-1].instructions == 300_000 - (
        135_000 + 60_000 + 30_000 + 15_000 + 15_000 + 33_000
    )


def test_floor_is_the_bare_get_and_what_must_stay() -> None:
    """Floor: bare GET + xmltodict + signature + the signing middleware over a bare GET."""
    assert instructions.floor(FAKE) == 300_000 + 120_000 + 60_000 + 15_000


def test_report_lines_print_ratios_and_the_cpu_floor() -> None:
    """The printed lines give each piece over the bare GET, the floor, and its CPU estimate."""
    lines = instructions.report_lines(FAKE, {"bare": 100.0, "signed": 180.0}, 200)
    text = "\n".join(lines)
    assert "400 - 200 calls" in lines[0]
    assert "signed status call (get_financial_report_status)" in text
    assert "600.0k   2.00x" in text
    assert "of which xmltodict.parse" in text
    assert "120.0k   0.40x" in text
    assert "floor (bare GET + xmltodict + signature + signing middleware) 495.0k = 1.65x" in text
    # 1.80x in CPU for 2.00x in instructions: an extra instruction costs 0.80, so 1 + 0.8 x 0.65.
    assert "1.80x" in text
    assert "0.80 of one" in text
    assert "about 1.52x" in text


def test_without_valgrind_it_says_so_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no valgrind on PATH, ``benchmarks.row1 --instructions`` says so and exits 0."""
    monkeypatch.setattr(instructions.shutil, "which", lambda _: None)
    assert row1.main(["--instructions"]) == 0
    assert "valgrind is not on PATH" in capsys.readouterr().out
