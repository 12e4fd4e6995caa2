"""The web pages, one module per page (routes parse, authorise, call services, render)."""
