"""Market-data sources: sim, yfinance, replay and none (relay only)."""
