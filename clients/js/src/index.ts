// @stockfeed/client: live prices from a stockfeed server, in browsers and in Node.
// React bindings: "@stockfeed/client/react".

export {
  StockfeedClient,
  type BarsEvent,
  type ClientEvents,
  type ClientStats,
  type ConnectionInfo,
  type ConnectionState,
  type GapEvent,
  type PollingOptions,
  type QuoteEvent,
  type RouteEvent,
  type RouteInfo,
  type StockfeedClientOptions,
  type SubscribeOptions,
  type TickerErrorEvent,
} from "./client.js";
export { FeedState, tickOf, TICKERS_PER_FRAME, type DropReason, type FeedChange, type Quote, type QuoteSource, type Tick, type Want } from "./feedState.js";
export { backoffDelay, randomJitter, BACKOFF, type Jitter } from "./backoff.js";
export { SocketController, SOCKET_DEFAULTS, type SocketSnapshot, type SocketState, type WebSocketConstructor, type WebSocketLike } from "./socket.js";
export { AuthError, ConnectError, StockfeedError, httpBase, socketUrl, type TokenCarrier, type TokenSource } from "./transport.js";
export { ApiError, getJson, type FetchLike } from "./rest.js";
export { BAR_INTERVALS, FIELDS, parseMessage, ProtocolError } from "./messages.js";
export type {
  Bar,
  BarInterval,
  BarMessage,
  BarsMessage,
  ClientFrame,
  Conflated,
  ErrorMessage,
  Heartbeat,
  MarketStatus,
  PingFrame,
  Pong,
  PriceMessage,
  PriceUpdate,
  QuoteData,
  ResumeMap,
  ResumePoint,
  ServerMessage,
  ServerShutdown,
  Snapshot,
  SubscribeFrame,
  Subscribed,
  UnknownMessage,
  Unsubscribed,
  UnsubscribeFrame,
} from "./messages.js";
export { CLOSE_RECONNECTS, ClientMessage, CloseCode, ErrorCode, MessageType } from "./protocol.js";
