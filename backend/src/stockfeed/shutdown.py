"""Graceful shutdown that clients can act on.

uvicorn, on SIGTERM, closes every WebSocket with 1012 before the app hears of it. We
wrap its signal handler: first every client gets `server_shutdown` with a retry hint
and a 1001 close, then uvicorn's own handler runs. Works in every worker process,
because uvicorn installs its handlers before the app's lifespan starts.

The services install it whatever serves the app (it needs no uvicorn import), which is
why it lives beside them and not in the optional server/ package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulShutdown:
    def __init__(self, drain: Callable[[], Awaitable[None]], timeout: float = 3.0) -> None:
        self._drain = drain
        self._timeout = timeout
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            try:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (e.g. a test client): skip
                self._previous.pop(sig, None)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self._started or loop is None or loop.is_closed():
            self._chain(sig, frame)
            return
        self._started = True
        log.info("signal %s: telling clients to reconnect later", signal.Signals(sig).name)
        loop.call_soon_threadsafe(lambda: loop.create_task(self._then_chain(sig, frame)))

    async def _then_chain(self, sig: int, frame: FrameType | None) -> None:
        try:
            await asyncio.wait_for(self._drain(), self._timeout)
        except Exception as exc:
            log.warning("draining clients before shutdown failed: %r", exc)
        self._chain(sig, frame)

    def _chain(self, sig: int, frame: FrameType | None) -> None:
        previous = self._previous.get(sig)
        if callable(previous):
            previous(sig, frame)
        else:  # nobody else handles it: behave as if we were never here
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)
