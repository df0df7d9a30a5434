"""stockfeed: live stock prices, pushed."""

__version__ = "0.1.0"
