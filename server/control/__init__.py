"""The control API: HTTP for the matchmaker and for operators.

``api`` holds the dispatcher (a plain ASGI application), its one ROUTES
table and the rooms' routes; ``game_routes`` the games' and signals',
``console_routes`` the operator console's (kick, tick times, the nodes, any
node's rooms through this one), ``routing`` what they share; ``auth`` the API-key
check and the keyless API's browser checks, ``validation`` the request
bodies and queries, ``serve`` runs it with hypercorn's trio worker (https
with ``--control-tls-cert``) in the GameServer's nursery; ``console`` serves
the operator console page, ``nodes`` the cluster's node list, and
``demo_page`` the demo page and the browser client's modules (``static/``).
docs/control-api.yaml is its OpenAPI description.
"""
