"""Tests of the routes (api/): REST and WebSocket endpoints, health, metrics, AsyncAPI."""
