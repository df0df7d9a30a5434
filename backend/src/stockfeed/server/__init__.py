"""The uvicorn-level machinery, optional as a whole: the fast WebSocket path (pre-built
frames written below the ASGI app through a sink), the HTTP protocol with its edge
limits, the ASGI entry point, proxy headers and the garbage collector's tuning.

The app (`create_app`) runs on any ASGI server without these protocols; the fan-out
core reaches them only through the sink's ASGI extension (fanout/connections.py), never
by import.
"""
