"""The UiTPAS XML API provider: OAuth 1.0a-signed XML calls as a balie employee.

``protocol`` is pure (requests in, models or errors out), ``client`` sends through
the engine, ``backend`` adapts the client to the orchestrator, ``login`` runs the
three-legged OAuth flow, and ``sandbox`` imitates the server.
"""
