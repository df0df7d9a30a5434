// Where the client connects and how it carries its token: the `/ws` address from what the
// caller gave, the REST base next to it, the token in the browser's carriers (the
// `bearer, <token>` subprotocol or the `access_token` query parameter; an `Authorization`
// header with the `ws` package), and a WebSocket implementation for the platform.

import type { WebSocketConstructor, WebSocketLike } from "./socket.js";

/** Where the token goes on the WebSocket handshake (docs/protocol.md, "Authentication"):
 * - `protocol`: `Sec-WebSocket-Protocol: bearer, <token>`; stays out of URLs and access logs.
 * - `query`: `?access_token=<token>`; the simplest, but URLs end up in proxy logs.
 * - `header`: `Authorization: Bearer <token>`; Node's `ws` only (browsers cannot set it). */
export type TokenCarrier = "protocol" | "query" | "header";

/** A token, or a function asked before every connection attempt (for refreshing tokens). */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

export class StockfeedError extends Error {
  override name = "StockfeedError";
}

/** Could not connect (and gave up), or no WebSocket implementation was found. */
export class ConnectError extends StockfeedError {
  override name = "ConnectError";
}

/** The server refused the token (close 4401/4403, or HTTP 401/403): retrying cannot help. */
export class AuthError extends StockfeedError {
  override name = "AuthError";
  constructor(
    message: string,
    readonly code: number,
    readonly reason: string | null,
  ) {
    super(message);
  }
}

function pageHref(): string | undefined {
  const loc = (globalThis as { location?: { href?: string } }).location;
  return typeof loc?.href === "string" ? loc.href : undefined;
}

/**
 * The `/ws` endpoint for `url`: `ws://host:8000`, `http://host:8000`, a full `.../ws` URL,
 * or in a browser a path such as `/ws` (resolved against the page, http becoming ws).
 */
export function socketUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url, pageHref());
  } catch {
    throw new TypeError(`not a WebSocket URL: ${JSON.stringify(url)} (expected ws://HOST:PORT/ws)`);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`not a WebSocket URL: ${JSON.stringify(url)} (expected ws://HOST:PORT/ws)`);
  }
  if (u.pathname === "" || u.pathname === "/") u.pathname = "/ws";
  u.hash = "";
  return u;
}

/** The REST API's base (`http://host:8000`, plus any path prefix before `/ws`). */
export function httpBase(ws: URL): string {
  const scheme = ws.protocol === "wss:" ? "https:" : "http:";
  const prefix = ws.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "");
  return `${scheme}//${ws.host}${prefix}`;
}

export async function resolveToken(source: TokenSource): Promise<string | null> {
  const token = typeof source === "function" ? await source() : source;
  return token ? token : null;
}

/** Open a socket to `url` with `token` in `carrier`. */
export function openSocket(Impl: WebSocketConstructor, url: URL, token: string | null, carrier: TokenCarrier): WebSocketLike {
  const target = new URL(url);
  target.searchParams.delete("access_token");
  if (!token) return new Impl(target.toString());
  if (carrier === "query") {
    target.searchParams.set("access_token", token);
    return new Impl(target.toString());
  }
  if (carrier === "header") return new Impl(target.toString(), [], { headers: { Authorization: `Bearer ${token}` } });
  return new Impl(target.toString(), ["bearer", token]);
}

/**
 * The WebSocket to use: the one passed in, else the platform's (browsers, Node 22+), else
 * the `ws` package (Node 20), loaded on first use so that browser bundles never see it.
 */
export async function resolveWebSocket(injected?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (injected) return injected;
  const platform = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (platform) return platform;
  // A computed specifier: bundlers leave it alone (browsers have a WebSocket anyway).
  const name = "ws";
  try {
    const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as {
      default?: WebSocketConstructor;
      WebSocket?: WebSocketConstructor;
    };
    const Impl = mod.WebSocket ?? mod.default;
    if (Impl) return Impl;
  } catch {
    /* not installed: said below */
  }
  throw new ConnectError("no WebSocket here: install the `ws` package (npm install ws) or pass `WebSocket` in the options");
}
