"""Where a process's log lines go: stderr at INFO, unless logging is configured already."""

from __future__ import annotations

import logging

import pytest

from surveillance.kit.log_setup import log_to_stderr


@pytest.fixture
def bare_logging(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    """No handler on the ``surveillance`` logger (a test body sets the root's aside:
    pytest adds its own there for each phase of a test)."""
    logger = logging.getLogger("surveillance")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    return logger


def test_an_unconfigured_process_gets_its_lines_on_stderr_once(
    bare_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    log_to_stderr()
    log_to_stderr()  # a second entry point in the same process adds nothing
    assert len(bare_logging.handlers) == 1
    assert bare_logging.getEffectiveLevel() == logging.INFO


def test_logging_configured_already_is_left_to_decide(
    bare_logging: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A root handler (``logging.basicConfig``, an operator's config) already writes the
    lines: a handler of ours would write each twice (seen in the worker's log)."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler()])
    log_to_stderr()
    assert bare_logging.handlers == []
    logging.getLogger("surveillance.alerts").warning("alert scan: once")
    assert capsys.readouterr().err.count("alert scan: once") == 1
