"""Build the configured source; `auto` decides once, at start-up, and says so loudly."""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import TYPE_CHECKING

from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.sources.base import Source

if TYPE_CHECKING:
    from stockfeed.sources.yahoo import YahooSource

log = logging.getLogger(__name__)


class SourceConfigError(Exception):
    """The configured source cannot start (e.g. an unreadable replay file)."""


async def build_source(settings: Settings, clock: MarketClock) -> Source | None:
    """The source this process uses, or None for `none` (relay only)."""
    name = settings.source
    if name == "none":
        return None
    if name == "replay":
        from stockfeed.sources.replay import ReplaySource

        path = settings.replay_file or str(files("stockfeed") / "data" / "ea-15m.jsonl")
        try:
            return ReplaySource(path, speed=settings.replay_speed, loop=settings.replay_loop)
        except (OSError, ValueError) as exc:
            raise SourceConfigError(f"cannot replay {path}: {exc}") from None
    if name == "sim":
        return _sim(settings, clock)
    yahoo = _yahoo(settings, clock)
    if name == "yfinance":
        return yahoo
    # auto: Yahoo if it answers now, else the simulator -- never a silent switch later.
    if await yahoo.probe(settings.yahoo_probe_timeout):
        log.warning("SOURCE: auto -> yfinance (Yahoo Finance answered): live market data")
        return yahoo
    await yahoo.close()
    log.warning(
        "SOURCE: auto -> sim (Yahoo Finance did not answer; probe limit %.0fs): "
        "prices are SIMULATED, not market data",
        settings.yahoo_probe_timeout,
    )
    return _sim(settings, clock)


def _sim(settings: Settings, clock: MarketClock) -> Source:
    from stockfeed.sources.sim import SimSource

    if settings.sim_market_hours:
        log.info(
            "simulator: each instrument trades its market's hours (XNYS sessions with pre- "
            "and post-market, crypto 24/7, FX 24/5); STOCKFEED_SIM_MARKET_HOURS=false "
            "trades everything around the clock"
        )
    else:
        log.warning(
            "simulator: market hours OFF (STOCKFEED_SIM_MARKET_HOURS=false): every "
            "instrument trades around the clock; market_status says market SIM, always open"
        )
    return SimSource(
        seed=settings.sim_seed,
        tick_interval=settings.sim_tick_interval,
        market_hours=settings.sim_market_hours,
        clock=clock,
    )


def _yahoo(settings: Settings, clock: MarketClock) -> YahooSource:
    from stockfeed.sources.yahoo import YahooSource

    return YahooSource(
        poll_interval=settings.poll_interval,
        streamer_url=settings.yahoo_streamer_url,
        streaming=settings.yahoo_streaming,
        is_trading=clock.is_trading,
    )
