"""Who may connect and what they may ask for: the handshake's gate (rate, origin, token,
connections per address), JWT verification, the `Host` allow-list, the per-connection
and per-address subscription limits, and the one per-ticker check both WebSocket
endpoints use.
"""
