"""PostgreSQL stub (replaced below)."""
