// Generated from backend/src/stockfeed/protocol/codes.py by
// `python -m stockfeed.protocol.typescript`: do not edit by hand.

export const MessageType = {
  priceUpdate: "price_update",
  snapshot: "snapshot",
  subscribed: "subscribed",
  unsubscribed: "unsubscribed",
  conflated: "conflated",
  heartbeat: "heartbeat",
  pong: "pong",
  marketStatus: "market_status",
  serverShutdown: "server_shutdown",
  error: "error",
  bars: "bars",
  bar: "bar",
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const ClientMessage = {
  ping: "ping",
  subscribe: "subscribe",
  unsubscribe: "unsubscribe",
} as const;
export type ClientMessage = (typeof ClientMessage)[keyof typeof ClientMessage];

export const ErrorCode = {
  invalidTicker: "invalid_ticker",
  unknownTicker: "unknown_ticker",
  badMessage: "bad_message",
  subscriptionLimit: "subscription_limit",
  newTickerRate: "new_ticker_rate",
  tickerLimit: "ticker_limit",
  rateLimited: "rate_limited",
  unauthorized: "unauthorized",
  forbiddenTicker: "forbidden_ticker",
  wrongGroup: "wrong_group",
  tooManyConnections: "too_many_connections",
  originNotAllowed: "origin_not_allowed",
  hostNotAllowed: "host_not_allowed",
  badRequest: "bad_request",
  noQuote: "no_quote",
  noHistory: "no_history",
  sourceUnavailable: "source_unavailable",
  upstreamBusy: "upstream_busy",
  notFound: "not_found",
  httpError: "http_error",
  requestTimeout: "request_timeout",
  uriTooLong: "uri_too_long",
  headersTooLarge: "headers_too_large",
  serverBusy: "server_busy",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const Session = {
  pre: "pre",
  regular: "regular",
  post: "post",
  closed: "closed",
} as const;
export type Session = (typeof Session)[keyof typeof Session];

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  invalidData: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  serviceRestart: 1012,
  tryAgainLater: 1013,
  badRequest: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  slowConsumer: 4408,
  tooMany: 4429,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close codes after which a client reconnects (with its backoff). */
export const CLOSE_RECONNECTS: ReadonlySet<number> = new Set([CloseCode.goingAway, CloseCode.serviceRestart, CloseCode.tryAgainLater, CloseCode.slowConsumer, CloseCode.tooMany]);
