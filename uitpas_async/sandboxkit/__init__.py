"""What every provider's sandbox is built on; no provider's wire format or auth lives here.

- :mod:`~uitpas_async.sandboxkit.config`: ``BaseSandboxConfig`` (generation time,
  time scale, seed, rate limit), the attrs validators, and ``SandboxSetup``
  (config, the one seeded RNG, the two clocks) a provider builds from.
- :mod:`~uitpas_async.sandboxkit.faults`: ``BaseFaultRule``, the kit's fault
  kinds, ``fault_endpoints`` and the deterministic ``FaultPlan``.
- :mod:`~uitpas_async.sandboxkit.pipeline`: ``RequestPipeline``, every request's
  rate limit, admission, fault injection and counters, and ``GET /_sandbox/stats``.
- :mod:`~uitpas_async.sandboxkit.server`: ``SandboxServer`` (config → pipeline →
  loopback server) and ``serve_until_cancelled``; :mod:`~.loopback` under it.
- :mod:`~uitpas_async.sandboxkit.stats`, :mod:`~.wire`, :mod:`~.ratelimit`: the
  counters, the ``Answer`` value with JSON helpers, the token buckets.
- :mod:`~uitpas_async.sandboxkit.report_content`, :mod:`~.spreadsheet`: the
  report workbooks the UiTPAS sandboxes serve.

A new provider's sandbox (see ``uitpas_async.finam.sandbox`` for a small one):

1. ``config.py``: a ``Literal`` of endpoint names; a ``Literal`` of fault kinds
   built on ``AnywhereFaultKind`` and ``ReportFaultKind`` plus its own; a rule
   ``class Rule(BaseFaultRule[Kind], endpoints=..., kinds=..., subject="account")``;
   the ``fault_endpoints`` table; a config subclassing ``BaseSandboxConfig``.
2. ``state.py``: a ``RequestStats`` subclass naming the endpoints and kinds
   (plus its own counters) and the API's behaviour, returning ``Answer`` values.
3. ``app.py``: a ``RequestPipeline`` subclass with ``routes``, ``admit`` (its
   auth, its request reading), ``subject``, ``handle``, ``forget``,
   ``refusal`` (its 429/503 bodies), ``FAULT_ANSWERS`` and any ``own_fault``.
4. ``server.py``: a ``SandboxServer`` subclass with ``default_config`` and ``build``.
"""
