"""The life of one report job, as data: states, the allowed transitions, and events.

Theory of operation: a job is queued, then created on the server (``creating``),
polled until generated (``generating``), downloaded (``downloading``) and
``done``; any step can end it ``failed``. Two edges go backwards on purpose: a
server that forgets a report (``UNKNOWN_REPORT_ID``) sends the job back to
``creating``, and a download refused as not ready sends it back to
``generating``. A resumed job may enter at ``generating`` (its report id is
known) or ``done`` (its file checked out). Nothing else is allowed; the
orchestrator goes through :func:`advance` for every change, so an impossible
move is a bug that fails loudly.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

import attrs

from uitpas_async.engine.errors import UitpasError
from uitpas_async.engine.models import DownloadedReport

__all__ = ["TRANSITIONS", "InvalidTransitionError", "JobEvent", "JobState", "advance"]


class JobState(str, enum.Enum):
    """Where a report job is in its life."""

    QUEUED = "queued"
    CREATING = "creating"
    GENERATING = "generating"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Whether the job has ended, well or badly."""
        return self in (JobState.DONE, JobState.FAILED)


_Q, _C, _G, _D, _OK, _X = JobState

#: Every allowed move; a state missing from a set cannot follow it.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _Q: frozenset({_C, _G, _OK, _X}),
    _C: frozenset({_G, _X}),
    _G: frozenset({_D, _C, _X}),
    _D: frozenset({_OK, _C, _G, _X}),
    _OK: frozenset(),
    _X: frozenset(),
}


class InvalidTransitionError(UitpasError):
    """A job was asked to make a move the lifecycle does not allow (a bug)."""

    code = "INVALID_TRANSITION"


def advance(current: JobState, new: JobState) -> JobState:
    """Return ``new`` if a job may move there from ``current``.

    Raises:
        InvalidTransitionError: the move is not in :data:`TRANSITIONS`.
    """
    if new not in TRANSITIONS[current]:
        raise InvalidTransitionError(f"a job cannot go from {current.value} to {new.value}")
    return new


@attrs.frozen
class JobEvent:
    """One state change of one job, as reported to progress callbacks."""

    #: Position of the request in the batch.
    index: int
    request: Any
    previous: JobState
    state: JobState
    report_id: str | None = None
    report: DownloadedReport | None = None
    error: UitpasError | None = None
    #: The period the job covers, once known (a "latest" request learns it when resolved).
    start: date | None = None
    end: date | None = None
    #: The journal's key of the job (None when the request never got a period).
    job_key: str | None = None
