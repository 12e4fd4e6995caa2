"""The application: storage, command line (and later the HTTP API, web pages, scheduler).

May import ``rules`` and ``notifications``; they never import this package.
"""
