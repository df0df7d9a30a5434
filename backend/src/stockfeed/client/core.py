"""`StockfeedClient`: an async client of the multiplexed `/ws` endpoint that stays connected.

    async with StockfeedClient("ws://127.0.0.1:8000", tickers=["AAPL"]) as feed:
        async for msg in feed:
            ...

One background task owns the connection (stockfeed.client.link). It reads frames into a
bounded queue that the caller drains by iterating; when the caller is slow the queue
fills, the task stops reading, and TCP pushes back to the server, which conflates (and
says so) instead of buffering without bound.

When the connection drops it reconnects by itself: after the server's `retry_after_ms`
when it announced a shutdown, otherwise after an exponential backoff with jitter. It
then subscribes again with `resume: {TICKER: {"seq": last_seq, "epoch": epoch}}`, so the
server replays what was missed; where it cannot, a `snapshot` with `gap=True` comes
through to the caller. Duplicates (a `seq` at or below the last one seen in the same
epoch) are dropped here, so the caller sees every `seq` of a ticker at most once and in
increasing order, except after a gap snapshot that opens a new epoch (a new seq space).

With `bars=["1m", ...]` every subscribe (the first and each resume) asks for candles too:
`Bars` and `Bar` messages, merged by `time` into `candles(ticker, interval)`. The server
sends `bars` afresh after a resume or a gap, so the merged bars end as the server's.

Against a deployment split into ticker groups (docs/protocol.md, "Ticker groups") it
follows the servers' `wrong_group` refusals, as the TypeScript client does: the ticker
moves to a connection of its own (`/ws?route=KEY`, or `route_url(KEY)`; one per key,
opened when first needed, closed when it holds nothing), whose messages come through the
same iterator, deduplicated with the rest. `state` is then the worst of the connections'
(a ticker whose connection is down is not live), and one of them giving up is the
client giving up. A refusal that is followed is not passed on; one that cannot be (no
route key, a key unfit for a URL, the refusing connection's own key, a ticker moved too
many times) comes through as the `ErrorMessage` it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stockfeed.client.backoff import Backoff
from stockfeed.client.errors import ConnectError
from stockfeed.client.link import ConnectionState, Frame, Link
from stockfeed.client.messages import (
    Bar,
    BarData,
    Bars,
    ErrorMessage,
    Message,
    PriceUpdate,
    Snapshot,
    Subscribed,
)
from stockfeed.sources.base import INTERVALS

log = logging.getLogger(__name__)

# Per-ticker errors that mean "stop asking for this ticker" (also after a reconnect).
_REFUSED_TICKER_CODES = {
    "invalid_ticker",
    "unknown_ticker",
    "subscription_limit",
    "forbidden_ticker",
}
# A subscribe frame must stay under the server's 4096-byte limit, resume points included.
_TICKERS_PER_SUBSCRIBE = 25
# Bars kept per ticker and interval by `candles()` (the oldest go first).
MAX_CANDLES = 5000
# What a route key may be before it goes into a URL; any other is not followed. The
# servers' keys are `g{group}-{i}` (stockfeed.ticker_groups.route_key); this is the
# pattern the example balancer accepts for `?route=` (deploy/nginx/ticker-groups.conf)
# and the TypeScript client's.
_ROUTE_KEY = re.compile(r"[A-Za-z0-9.=^-]{1,32}")
# A ticker moved this many times with no `subscribed` holding it: a loop between
# misconfigured groups; the next refusal comes through like any other error.
MAX_ROUTE_HOPS = 4
# Worst last: the connection state a client with several connections reports.
_RANK = {
    ConnectionState.CLOSED: 0,
    ConnectionState.CONNECTED: 1,
    ConnectionState.CONNECTING: 2,
    ConnectionState.RECONNECTING: 3,
}


def ws_url(url: str, token: str | None = None) -> str:
    """The `/ws` endpoint for `url` (`ws://host:port`, `http://…` or a full `/ws` URL),
    with the token as the `access_token` query parameter when one is given."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a WebSocket URL: {url!r} (expected ws://HOST:PORT)")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "access_token"]
    if token:
        query.append(("access_token", token))
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def route_ws_url(url: str, key: str) -> str:
    """`url` (a `/ws` URL) with `route=KEY`: where a load balancer in front of ticker
    groups sends a connection for the group of that route key."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "route"]
    query.append(("route", key))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _normalize(ticker: str) -> str:
    if not isinstance(ticker, str):
        raise TypeError(f"tickers are strings, got {ticker!r}")
    return ticker.strip().upper()


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """A connection for a ticker group's route key (`routes()`)."""

    key: str
    url: str  # without the token
    state: ConnectionState
    tickers: tuple[str, ...]  # the tickers the client asks for there


class StockfeedClient:
    def __init__(
        self,
        url: str = "ws://127.0.0.1:8000",
        tickers: Iterable[str] = (),
        *,
        token: str | None = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        open_timeout: float = 10.0,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = None,
        retry_first_connect: bool = False,
        backoff: Backoff | None = None,
        queue_size: int = 1024,
        max_message_bytes: int = 1 << 20,
        bars: Iterable[str] = (),
        route_url: Callable[[str], str] | None = None,
    ) -> None:
        """`retry_first_connect=False` makes entering the client fail at once with
        `ConnectError` when the server cannot be reached (a wrong URL shows up right away);
        drops after that are always retried, `max_reconnect_attempts` times in a row at most
        (None: forever), unless `reconnect=False`. `bars` (intervals: "1m", "5m", "15m",
        "1h", "1d") asks for candles of every ticker: `Bars` / `Bar` messages, merged by
        time into `candles(ticker, interval)`. `route_url(key)` is where the connection for
        a ticker group's route key goes (default: `url` with `?route=KEY`, which a load
        balancer such as deploy/nginx/ticker-groups.conf sends to the right group)."""
        self.bar_intervals = tuple(dict.fromkeys(bars))
        unknown = [i for i in self.bar_intervals if i not in INTERVALS]
        if unknown:
            raise ValueError(f"bars: unknown interval {unknown[0]!r}: use {', '.join(INTERVALS)}")
        self.url = ws_url(url)
        self._token = token
        self._route_url = route_url
        self._wanted: dict[str, None] = dict.fromkeys(_normalize(t) for t in tickers)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.retry_first_connect = retry_first_connect
        self.max_message_bytes = max_message_bytes
        self.last_seq: dict[str, int] = {}  # per ticker, the newest seq passed on
        self.epochs: dict[str, str] = {}  # per ticker, the seq space last_seq belongs to
        self.duplicates = 0  # messages dropped because their seq was already seen
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
        main_url = ws_url(url, token)
        self._main = Link(self, "", self.url, main_url, backoff or Backoff(), self._queue)
        # Ticker groups: the route key of each ticker a server sent elsewhere (kept while
        # the client lives: asked for again, the ticker goes straight there), the
        # connection of each key, and the moves of each ticker since a `subscribed` last
        # held it (MAX_ROUTE_HOPS).
        self._route_of: dict[str, str] = {}
        self._routes: dict[str, Link] = {}
        self._hops: dict[str, int] = {}
        # Route connections closed: what they counted, and those still closing.
        self._carried = {"connects": 0, "reconnects": 0, "malformed": 0}
        self._closing_links: set[Link] = set()
        self._finished = asyncio.Event()
        self._error: BaseException | None = None
        self._closing = False
        self._sync_queued = False
        self._background: set[asyncio.Task[None]] = set()
        self._candles: dict[tuple[str, str], dict[int, BarData]] = {}

    # -- public API ----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The main connection's state; with route connections (ticker groups), the worst
        of them all: `reconnecting` over `connecting` over `connected`."""
        if self._main.state == ConnectionState.CLOSED:
            return ConnectionState.CLOSED
        return self._worst().state

    @property
    def backoff(self) -> Backoff:
        """The main connection's reconnect schedule (a route connection starts with a copy
        of its own when it opens)."""
        return self._main.backoff

    @backoff.setter
    def backoff(self, backoff: Backoff) -> None:
        self._main.backoff = backoff

    @property
    def latency_ms(self) -> float | None:
        """Round trip of the last answered ping on the main connection."""
        return self._main.latency_ms

    @property
    def last_error(self) -> str | None:
        """Why the last attempt or connection failed (of the connection `state` is of)."""
        return self._worst().last_error

    @property
    def retry_in(self) -> float | None:
        """Seconds until the next connection attempt, while waiting for it (of the
        connection `state` is of)."""
        retry_at = self._worst().retry_at
        if retry_at is None:
            return None
        return max(0.0, retry_at - asyncio.get_running_loop().time())

    @property
    def held(self) -> tuple[str, ...]:
        """What the servers say they hold for this client (the main connection's tickers,
        then those of each route connection)."""
        return tuple(t for link in self._links() for t in link.held)

    @property
    def connects(self) -> int:
        """Connections opened (every connection, every attempt that succeeded)."""
        return self._carried["connects"] + sum(link.connects for link in self._links())

    @property
    def reconnects(self) -> int:
        """Connections opened again after a drop."""
        return self._carried["reconnects"] + sum(link.reconnects for link in self._links())

    @property
    def malformed(self) -> int:
        """Frames that broke the protocol (skipped)."""
        return self._carried["malformed"] + sum(link.malformed for link in self._links())

    def routes(self) -> list[RouteInfo]:
        """The route connections open now (ticker groups), in the order they were opened:
        empty against a deployment that is not split."""
        return [
            RouteInfo(key, link.url, link.state, self._tickers_of(key))
            for key, link in self._routes.items()
        ]

    def candles(self, ticker: str, interval: str) -> list[BarData]:
        """The bars received so far for a ticker and interval, oldest first: each `Bars`
        and `Bar` merged by `time` (a later one replaces an earlier one of the same time)."""
        book = self._candles.get((_normalize(ticker), interval), {})
        return [book[t] for t in sorted(book)]

    @property
    def tickers(self) -> tuple[str, ...]:
        """The tickers asked for (minus those the server refused), in order."""
        return tuple(self._wanted)

    async def __aenter__(self) -> StockfeedClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and subscribe; ConnectError/AuthError when the first attempt fails
        (unless `retry_first_connect`)."""
        main = self._main
        if main.started:
            raise RuntimeError("the client is already started")
        main.state = ConnectionState.CONNECTING
        ws = None
        if not self.retry_first_connect:
            try:
                ws = await main.open()
            except BaseException:
                main.state = ConnectionState.CLOSED
                raise
            main.state = ConnectionState.CONNECTED
        main.start(ws)

    async def close(self) -> None:
        """Close the connections (1000) and stop reconnecting. Queued messages can still be
        read; then iteration ends."""
        self._closing = True
        for task in list(self._background):
            task.cancel()
        routes = [self._retire(key) for key in list(self._routes)]
        # With those a sync was closing when it was cancelled.
        routes += self._closing_links
        await asyncio.gather(self._main.close(), *(link.close() for link in routes))
        self._finished.set()

    async def subscribe(self, *tickers: str) -> None:
        """Add tickers. The answer (`subscribed`, or an `error` per refused ticker) comes
        through the message stream; while disconnected they are sent on reconnect."""
        new = [t for t in map(_normalize, tickers) if t not in self._wanted]
        self._wanted.update(dict.fromkeys(new))
        if new:
            await self._sync()

    async def unsubscribe(self, *tickers: str) -> None:
        """Remove tickers; their updates still in flight are dropped, not passed on."""
        gone = [t for t in map(_normalize, tickers) if t in self._wanted]
        for ticker in gone:
            del self._wanted[ticker]
            self.last_seq.pop(ticker, None)
            self.epochs.pop(ticker, None)
            for interval in self.bar_intervals:
                self._candles.pop((ticker, interval), None)
        if gone:
            await self._sync()

    def __aiter__(self) -> StockfeedClient:
        return self

    async def __anext__(self) -> Message:
        while True:
            if not self._queue.empty():
                msg = self._queue.get_nowait()
                if self._unwanted(msg):
                    continue
                return msg
            if self._finished.is_set():
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            getter = asyncio.ensure_future(self._queue.get())
            finished = asyncio.ensure_future(self._finished.wait())
            try:
                await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                finished.cancel()
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                msg = getter.result()
                if not self._unwanted(msg):
                    return msg

    def _unwanted(self, msg: Message) -> bool:
        # Queued before an unsubscribe: the caller no longer wants it.
        return (
            isinstance(msg, PriceUpdate | Snapshot | Bars | Bar) and msg.ticker not in self._wanted
        )

    async def recv(self) -> Message:
        """The next message (StopAsyncIteration once the client is closed, the client's
        error when it gave up); wrap in `asyncio.timeout()` to bound the wait."""
        return await self.__anext__()

    # -- the connections (LinkOwner) -----------------------------------------------------

    def _links(self) -> list[Link]:
        return [self._main, *self._routes.values()]

    def _worst(self) -> Link:
        # The main connection on a tie: its latency and errors are the ones to show.
        return max(self._links(), key=lambda link: _RANK[link.state])

    def _tickers_of(self, key: str) -> tuple[str, ...]:
        """The wanted tickers the connection `key` ("" the main one) should hold."""
        return tuple(t for t in self._wanted if self._route_of.get(t, "") == key)

    def opening_frames(self, link: Link) -> list[Frame]:
        tickers = self._tickers_of(link.key)
        link.asked = dict.fromkeys(tickers)
        return self._subscribe_frames(list(tickers))

    def link_ended(self, link: Link, error: BaseException | None) -> None:
        if error is not None:
            self._give_up(error, link)
        if link is self._main:
            self._finished.set()

    def _give_up(self, error: BaseException, source: Link | None) -> None:
        """One connection gave up (out of attempts, or refused): so does the client, since
        the tickers it held are not live any more. Iterating raises `error` once the
        queued messages are read."""
        if self._closing or self._error is not None:
            return
        self._error = error
        for link in self._links():
            if link is not source:
                link.abort()
        self._finished.set()

    def accept(self, link: Link, msg: Message, now: float) -> bool:
        """Update the client's state from a message read on `link`; False drops it
        (a duplicate, an unsubscribed ticker's, a `wrong_group` refusal followed)."""
        if isinstance(msg, PriceUpdate):
            if msg.ticker not in self._wanted:
                return False  # unsubscribed while it was in flight
            last = self.last_seq.get(msg.ticker)
            if last is not None and msg.seq <= last:
                self.duplicates += 1
                return False
            self.last_seq[msg.ticker] = msg.seq
            return True
        if isinstance(msg, Snapshot):
            return self._accept_snapshot(msg)
        if isinstance(msg, Bars | Bar):
            if msg.ticker not in self._wanted:
                return False
            book = self._candles.setdefault((msg.ticker, msg.interval), {})
            for bar in msg.bars if isinstance(msg, Bars) else (msg.bar,):
                book[bar.time] = bar
            while len(book) > MAX_CANDLES:
                del book[min(book)]
            return True
        if isinstance(msg, Subscribed):
            for ticker, epoch in msg.epochs.items():
                if self.epochs.get(ticker, epoch) != epoch:
                    # A new seq space (server restarted without shared state): the old
                    # last_seq means nothing there. The gap snapshot follows.
                    self.last_seq.pop(ticker, None)
                self.epochs[ticker] = epoch
            for ticker in msg.tickers:
                if self._route_of.get(ticker, "") == link.key:
                    self._hops.pop(ticker, None)  # held where it belongs: no loop
        elif isinstance(msg, ErrorMessage) and msg.ticker:
            if msg.code == "wrong_group" and self._follow(link, msg, msg.ticker):
                return False
            if msg.code in _REFUSED_TICKER_CODES:
                refused = msg.ticker.upper()
                for ticker in [t for t in self._wanted if t[:32] == refused]:
                    del self._wanted[ticker]  # not asked again after a reconnect
                    if link.asked is not None:
                        link.asked.pop(ticker, None)
                    if ticker in self._route_of:
                        self._sync_soon()  # its route connection may hold nothing now
        return True

    def _accept_snapshot(self, msg: Snapshot) -> bool:
        ticker = msg.ticker
        if ticker not in self._wanted:
            return False
        last = self.last_seq.get(ticker)
        same_epoch = msg.epoch == self.epochs.get(ticker, msg.epoch)
        if not msg.gap and last is not None and msg.seq <= last and same_epoch:
            self.duplicates += 1
            return False
        # A gap snapshot is always passed on: it tells the caller history broke here.
        self.last_seq[ticker] = msg.seq
        self.epochs[ticker] = msg.epoch
        return True

    # -- ticker groups -------------------------------------------------------------------

    def _follow(self, link: Link, msg: ErrorMessage, ticker: str) -> bool:
        """A `wrong_group` refusal on `link`: move the ticker to the connection of the
        route key it names. False when it cannot be followed (no key, a key unfit for a
        URL, the refusing connection's own key, too many moves)."""
        route = msg.route
        if route is None or not _ROUTE_KEY.fullmatch(route) or route == link.key:
            return False
        ticker = _normalize(ticker)
        if self._route_of.get(ticker, "") != link.key:
            return True  # late news from a connection the ticker already left
        hops = self._hops.get(ticker, 0) + 1
        if hops > MAX_ROUTE_HOPS:
            return False
        self._hops[ticker] = hops
        if link.asked is not None:
            link.asked.pop(ticker, None)  # not held there: nothing to unsubscribe
        self._route_of[ticker] = route
        log.info("stockfeed client: %s moves to route %s: %s", ticker, route, msg.message)
        self._sync_soon()
        return True

    def _sync_soon(self) -> None:
        """`_sync()` once the message being read is taken (it sends, and may open or
        close connections; several refusals in a row make one sync)."""
        if self._sync_queued or self._closing:
            return
        self._sync_queued = True

        async def later() -> None:
            self._sync_queued = False
            await self._sync()

        task = asyncio.create_task(later(), name="stockfeed-client-sync")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sync(self) -> None:
        """Bring each connection to what it should hold: subscribe the tickers new to it,
        unsubscribe those it no longer should; open a connection for each route key a
        wanted ticker has, and close those left with nothing to hold. A connection that is
        not connected is left alone: its (re)connect asks for what it should hold then."""
        if self._closing or self._finished.is_set() or not self._main.started:
            return
        want: dict[str, list[str]] = {}
        for ticker in self._wanted:
            want.setdefault(self._route_of.get(ticker, ""), []).append(ticker)
        for key in want:
            if key and key not in self._routes and not self._open_route(key):
                return
        empty = [self._retire(key) for key in list(self._routes) if key not in want]
        self._closing_links.update(empty)
        sends = []
        # Everything is decided (and `asked` updated) before the first await, so a sync
        # running meanwhile sends nothing twice.
        for link in self._links():
            if link.asked is None:
                continue
            tickers = want.get(link.key, [])
            new = [t for t in tickers if t not in link.asked]
            keep = set(tickers)
            gone = [t for t in link.asked if t not in keep]
            for ticker in gone:
                del link.asked[ticker]
            link.asked.update(dict.fromkeys(new))
            frames: list[Frame] = [{"action": "unsubscribe", "tickers": gone}] if gone else []
            frames += self._subscribe_frames(new)
            if frames:
                sends.append(link.send(frames))
        await asyncio.gather(*sends, *(link.close() for link in empty))
        self._closing_links.difference_update(empty)

    def _retire(self, key: str) -> Link:
        """Take the route connection of `key` out (to be closed); its counts stay."""
        link = self._routes.pop(key)
        self._carried["connects"] += link.connects
        self._carried["reconnects"] += link.reconnects
        self._carried["malformed"] += link.malformed
        return link

    def _open_route(self, key: str) -> bool:
        """Open the connection for route `key`; False when there is no URL to open (the
        client gives up: its tickers cannot be reached)."""
        try:
            if self._route_url is None:
                url = route_ws_url(self.url, key)
            else:
                url = ws_url(self._route_url(key))
            connect_url = ws_url(url, self._token)
        except Exception as exc:  # not a WebSocket URL, or route_url's own failure
            error = ConnectError(f"cannot connect to route {key}: {exc}")
            error.__cause__ = exc
            self._give_up(error, None)
            return False
        backoff = dataclasses.replace(self.backoff, attempt=0)  # its own schedule
        link = Link(self, key, url, connect_url, backoff, self._queue)
        link.state = ConnectionState.CONNECTING
        self._routes[key] = link
        link.start(None)
        return True

    # -- frames --------------------------------------------------------------------------

    def _subscribe_frames(self, tickers: list[str]) -> list[Frame]:
        """Subscribe frames for `tickers`, resuming each from its last seq when there is
        one (a ticker new to the client, or unsubscribed since, has none)."""
        frames: list[Frame] = []
        for start in range(0, len(tickers), _TICKERS_PER_SUBSCRIBE):
            chunk = tickers[start : start + _TICKERS_PER_SUBSCRIBE]
            frame: Frame = {"action": "subscribe", "tickers": chunk}
            if self.bar_intervals:
                frame["bars"] = list(self.bar_intervals)
            points: dict[str, object] = {}
            for ticker in chunk:
                seq = self.last_seq.get(ticker)
                if seq is None:
                    continue
                epoch = self.epochs.get(ticker)
                points[ticker] = seq if epoch is None else {"seq": seq, "epoch": epoch}
            if points:
                frame["resume"] = points
            frames.append(frame)
        return frames
