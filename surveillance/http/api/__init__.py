"""The HTTP API (FastAPI) under /api/v1; web pages live in ``surveillance.web``."""
