"""The per-process fan-out core: between the broker and this process's client connections.

`hub.Hub` tracks the connections and the tickers each holds and broadcasts every update,
framed once, to each subscriber; `connections.Connection` is one client as the hub sees
it (the one accounted write path: byte budget, conflation, 4408). The hub's parts:
`linger` (what the process holds and for how long), `recovery` (resume, backfill),
`listening` (the broker side), `latest` (snapshots), `epochs`, `stats`, `bar_feed`
(bars). Nothing here imports uvicorn or `stockfeed.server` (tests/fanout/test_layering.py).
"""
