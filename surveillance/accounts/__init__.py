"""Users, roles, passwords, bearer and feed tokens, browser sessions.

Imports ``records`` (a user works at sites) and ``kit``; never a feature package.
"""
