"""Publish/subscribe between processes on `market:{TICKER}` (memory or Redis)."""

from stockfeed.broker.base import Broker, BrokerUnavailable, MessageHandler

__all__ = ["Broker", "BrokerUnavailable", "MessageHandler"]
