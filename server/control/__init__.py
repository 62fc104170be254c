"""The control API: HTTP for the matchmaker and for operators.

``api`` holds the routes (a plain ASGI application), ``auth`` the API-key
check and the keyless API's browser checks, ``validation`` the request
bodies and queries, ``serve`` runs it with hypercorn's trio worker (https
with ``--control-tls-cert``) in the GameServer's nursery; ``console`` serves
the operator console page, ``nodes`` the cluster's node list, and
``demo_page`` the demo page and the browser client's modules (``static/``).
docs/control-api.yaml is its OpenAPI description.
"""
