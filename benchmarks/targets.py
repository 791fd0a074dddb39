"""The targets the benchmarks judge by (issues 4, 12 and 15), each named once."""

from __future__ import annotations

#: Client CPU of a signed status call over a bare aiohttp GET, at most (row 1).
SIGNED_CALL_RATIO = 1.3
#: A batch without a rate limit: makespan over the lower bound, at most.
MAKESPAN_OVER_LB = 1.10
#: A batch under the server's rate limit: makespan over the lower bound, at most.
LIMITED_MAKESPAN_OVER_LB = 1.30
#: p95 detection lag over generation time, at most (a batch, or a report with history).
LAG_P95 = 0.10
#: Median status polls per job, at most (a batch, or a report with history).
POLLS_MEDIAN = 12
#: One report without history: p95 detection lag and median polls, at most.
BLIND_LAG_P95 = 0.25
BLIND_POLLS_MEDIAN = 25
