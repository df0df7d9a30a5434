"""Build the configured source; `auto` decides once, at start-up, and says so loudly.

`--source` names one source (built in, or a vendor plugin of sources/vendors/) or a chain
of them (`alpaca,yfinance`), built into a FailoverSource (sources/failover.py).
"""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import TYPE_CHECKING

from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.models import Tick
from stockfeed.sources.base import Source

if TYPE_CHECKING:
    from stockfeed.kept.base import KeptTick
    from stockfeed.sources.yahoo import YahooSource

log = logging.getLogger(__name__)


class SourceConfigError(Exception):
    """The configured source cannot start (e.g. an unreadable replay file)."""


def problems(settings: Settings) -> list[str]:
    """What stops the configured sources from running (a missing key), said before the
    server starts: each is one line for the operator."""
    from stockfeed.sources import vendors

    found: list[str] = []
    for name in settings.source_chain:
        if name in vendors.names():
            problem = vendors.module(name).check(settings)
            if problem:
                found.append(problem)
    return found


async def build_source(settings: Settings, clock: MarketClock) -> Source | None:
    """The source this process uses, or None for `none` (relay only)."""
    chain = settings.source_chain
    if len(chain) > 1:
        from stockfeed.sources.failover import FailoverSource

        members = [await _build_one(name, settings, clock) for name in chain]
        log.warning(
            "SOURCE: chain %s: each ticker from the first that quotes it and is healthy",
            " -> ".join(chain),
        )
        return FailoverSource(
            [m for m in members if m is not None],
            clock=clock,
            fail_back_after=settings.source_fail_back_after,
        )
    return await _build_one(chain[0], settings, clock)


async def _build_one(name: str, settings: Settings, clock: MarketClock) -> Source | None:
    from stockfeed.sources import vendors

    if name in vendors.names():
        source: Source = vendors.module(name).build(settings, clock)
        feed = f" feed {source.feed}" if source.feed else ""
        delay = f", {source.delayed} s delayed" if source.delayed else ""
        log.warning("SOURCE: %s%s%s: live market data", name, feed, delay)
        return source
    if name == "none":
        return None
    if name == "replay" and settings.replay_from:
        return await _replay_from_store(settings)
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


# Kept updates a replay from the store holds in memory at most: a narrower --from/--to past it.
REPLAY_MAX_TICKS = 2_000_000


async def _replay_from_store(settings: Settings) -> Source:
    """`--source replay --from T --to T`: the kept updates of that time (`--keep-ticks`),
    every ticker's, played at `--speed` through the same protocol."""
    from stockfeed.kept import KeptUnavailable
    from stockfeed.kept import urls as kept_urls
    from stockfeed.sources.replay import ReplaySource

    store = kept_urls.build(settings)
    if store is None:
        raise SourceConfigError("--from needs a store to replay (not --store none)")
    since, until = settings.replay_span
    ticks: list[Tick] = []
    try:
        await store.open()
        after = None
        while True:
            page = await store.ticks(int(since * 1e6), int(until * 1e6), after=after, limit=50_000)
            ticks += [_tick_of(t) for t in page]
            if len(ticks) > REPLAY_MAX_TICKS:
                raise SourceConfigError(
                    f"more than {REPLAY_MAX_TICKS:,} kept updates between --from and --to: "
                    "replay a shorter time"
                )
            if len(page) < 50_000:
                break
            after = (page[-1].time_us, page[-1].ticker, page[-1].seq)
    except KeptUnavailable as exc:
        raise SourceConfigError(f"cannot read the store {store.where}: {exc}") from None
    finally:
        await store.close()
    if not ticks:
        raise SourceConfigError(
            f"no kept updates in {store.where} between --from and --to (updates are kept "
            "with --keep-ticks)"
        )
    log.warning(
        "SOURCE: replay of %d kept updates (%d tickers) from %s at speed %g",
        len(ticks),
        len({t.ticker for t in ticks}),
        store.where,
        settings.replay_speed,
    )
    return ReplaySource(
        f"store:{store.where}", speed=settings.replay_speed, loop=settings.replay_loop, ticks=ticks
    )


def _tick_of(kept: KeptTick) -> Tick:
    """A kept update as the tick a replay plays."""
    return Tick(
        kept.ticker,
        kept.price,
        market_time=kept.market_time or kept.time_us // 1000,
        volume=kept.volume,
        open=kept.open,
        high=kept.high,
        low=kept.low,
        prev_close=kept.prev_close,
        price_decimals=kept.price_decimals,
    )


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
    sim = SimSource(
        seed=settings.sim_seed,
        tick_interval=settings.sim_tick_interval,
        market_hours=settings.sim_market_hours,
        clock=clock,
    )
    log.info(
        "simulator: seed %d (%s): the same history on every start with it",
        sim.seed,
        "--sim-seed" if settings.sim_seed is not None else "the default",
    )
    return sim


def _yahoo(settings: Settings, clock: MarketClock) -> YahooSource:
    from stockfeed.sources.yahoo import YahooSource

    return YahooSource(
        poll_interval=settings.poll_interval,
        streamer_url=settings.yahoo_streamer_url,
        streaming=settings.yahoo_streaming,
        is_trading=clock.is_trading,
    )
