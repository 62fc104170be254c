"""The control API: HTTP for the matchmaker and for operators.

``api`` holds the routes (a plain ASGI application), ``auth`` the API-key
check, ``serve`` runs it with hypercorn's trio worker in the GameServer's
nursery. docs/control-api.yaml is its OpenAPI description.
"""
