"""The game port: sockets to messages, on the hot path.

``listener`` accepts and admits connections (caps per node and per address)
into the ``ConnectionTable``; ``connection`` runs one client from the
upgrade to the close (join, then the room's tick reads its socket);
``websocket`` is the server side of the WebSocket (wsproto for the upgrade,
tickroom.protocol.websocket_frames for frames, the close handshake);
``tls`` wraps a socket in TLS without a task per connection; ``outbox`` holds
what the kernel did not take yet (latest snapshot wins); ``urls`` turns a
bind address into the URL clients reach.
"""
