"""Wire protocol v1: the vocabulary (codes.py) and the messages (messages.py)."""

from stockfeed.protocol.codes import (
    CLOSE_RECONNECTS,
    ClientMessage,
    CloseCode,
    ErrorCode,
    MessageType,
    Session,
)
from stockfeed.protocol.messages import (
    BadUpdate,
    dumps,
    error,
    heartbeat,
    pong,
    price_update,
    read_update,
    seq_after_head,
    server_shutdown,
    snapshot,
    subscribed,
    unsubscribed,
    update_head,
    update_seq,
)

__all__ = [
    "CLOSE_RECONNECTS",
    "BadUpdate",
    "ClientMessage",
    "CloseCode",
    "ErrorCode",
    "MessageType",
    "Session",
    "dumps",
    "error",
    "heartbeat",
    "pong",
    "price_update",
    "read_update",
    "seq_after_head",
    "server_shutdown",
    "snapshot",
    "subscribed",
    "unsubscribed",
    "update_head",
    "update_seq",
]
