"""The provider-neutral engine: run many report jobs at once, durably, politely.

Nothing here knows a provider. A provider plugs in through
:class:`~uitpas_async.engine.backend.ReportBackend` (start, poll, download) and
reuses the engine's pieces for the wire: :mod:`~uitpas_async.engine.client` (the
client base wiring a session and a call pipeline, one send, one checked download),
:mod:`~uitpas_async.engine.calls` (slots,
pacing, Retry-After and retries around one attempt), :mod:`~uitpas_async.engine.transport`
(one aiohttp seam), :mod:`~uitpas_async.engine.storage` (checked, atomic downloads)
and :mod:`~uitpas_async.engine.tokens` (a bearer token renewed single-flight).
See ``ARCHITECTURE.md``.
"""
