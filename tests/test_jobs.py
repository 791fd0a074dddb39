"""The job lifecycle table, on its own."""

from __future__ import annotations

import itertools

import pytest

from uitpas_async.engine.jobs import TRANSITIONS, InvalidTransitionError, JobState, advance

Q, C, G, D, OK, X = JobState

ALLOWED = {
    (Q, C),  # a new job is created
    (Q, G),  # resumed: its report id is known
    (Q, OK),  # resumed: its file checked out
    (Q, X),
    (C, G),
    (C, X),
    (G, D),
    (G, C),  # the server forgot the report
    (G, X),
    (D, OK),
    (D, C),  # forgotten between status and download
    (D, G),  # download refused as not ready
    (D, X),
}


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_allowed_moves(current: JobState, new: JobState) -> None:
    """Every move in the lifecycle is accepted."""
    assert advance(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    sorted(set(itertools.product(JobState, JobState)) - ALLOWED),
)
def test_forbidden_moves(current: JobState, new: JobState) -> None:
    """Every other move, staying put included, is refused."""
    with pytest.raises(InvalidTransitionError):
        advance(current, new)


def test_table_matches_the_documented_lifecycle() -> None:
    """The table holds exactly the documented moves, and every state has a row."""
    table = {(current, new) for current, targets in TRANSITIONS.items() for new in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(JobState)


def test_finished_states_are_terminal() -> None:
    """Done and failed are the only finished states, and nothing follows them."""
    assert {state for state in JobState if state.finished} == {OK, X}
    assert not TRANSITIONS[OK]
    assert not TRANSITIONS[X]
