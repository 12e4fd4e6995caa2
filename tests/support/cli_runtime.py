"""The command line's process-wide runtime, forgotten between tests.

A command builds its settings, engine and runtime once per process (``cli.context``); in
one pytest process that is once per test, else a test invoking a command in-process gets
the database of whichever test ran a command before it.
"""

from __future__ import annotations

from surveillance.cli import context
from surveillance.config import get_settings


def forget_cli_runtime() -> None:
    if context._built.cache_info().currsize:
        context._built().engine.dispose()
    for cached in (context._upgraded, context._built, get_settings):
        cached.cache_clear()
