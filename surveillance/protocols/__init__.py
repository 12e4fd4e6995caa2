"""The protocols the application knows (bundled or from a configured folder): one lookup,
one error for an unknown protocol, and the views people and API clients read.

Imports ``rules`` and ``errors`` only.
"""
