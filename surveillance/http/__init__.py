"""The HTTP edge: the JSON API (``api``) and the web pages (``web``), sharing ``deps``
(who is asking, which patients they may see) and ``problems`` (errors as RFC 9457 problem
details or error pages). ``app`` assembles both on a ``main.Runtime``.

Parses, authorises, calls one service function and shapes the answer; no SQL of its own.
"""
