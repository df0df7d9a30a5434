"""Tests of the uvicorn-level machinery (server/)."""
