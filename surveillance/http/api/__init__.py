"""The JSON API (FastAPI) under /api/v1; the web pages live in ``surveillance.http.web``."""
