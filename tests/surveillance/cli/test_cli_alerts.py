"""`surveillance alerts ...` and `surveillance webhooks ...` as an operator runs them: the
installed console script in a child process, ``DATABASE_URL`` a SQLite file in a
temporary folder (also the working directory), the loopback receiver as the endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from support.alert_support import add_sites_and_staff, enroll_aav
from support.peers import Receiver

import rules
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session

SCRIPT = Path(sys.executable).parent / "surveillance"
INFUSED = date(2024, 3, 1)  # long past: alerts scanned "as of" then are due now
EVENTS = "assessment.overdue,assessment.escalated"


class Cli:
    def __init__(self, folder: Path, **env: str) -> None:
        self.folder, self.env = folder, env

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SURVEILLANCE_") and k != "DATABASE_URL"
        }
        environment["DATABASE_URL"] = f"sqlite:///{self.folder / 'x.db'}"
        environment.update(self.env | env)
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=self.folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, **env: str) -> str:
        done = self.run(*args, **env)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def fails(self, *args: str, **env: str) -> str:
        done = self.run(*args, **env)
        assert done.returncode != 0, f"{args} should have failed:\n{done.stdout}"
        assert "Traceback" not in done.stderr + done.stdout
        assert done.stderr.startswith("error: "), done.stderr
        return done.stderr.strip()


@pytest.fixture
def cli(tmp_path: Path, registry: rules.ProtocolRegistry) -> Cli:
    """Rome and Erlangen with their staff, two AAV patients at Rome infused on INFUSED."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate.upgrade(engine)
    with write_session(engine) as session:
        add_sites_and_staff(session)
        now = datetime(INFUSED.year, INFUSED.month, INFUSED.day, 12, tzinfo=UTC)
        enroll_aav(session, registry, ["ROM-101", "ROM-102"], infused=INFUSED, now=now)
    engine.dispose()
    return Cli(tmp_path)


def test_alerts_and_webhooks_commands(cli: Cli, receiver: Receiver) -> None:
    # A loopback URL is refused unless private addresses are allowed; nothing is stored.
    error = cli.fails("webhooks", "add", receiver.url, "--events", EVENTS, "--format", "json")
    assert "127.0.0.1 is a private, loopback or link-local address" in error
    assert "SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE" in error

    created = json.loads(
        cli.ok(
            "webhooks",
            "add",
            receiver.url,
            "--events",
            EVENTS,
            "--format",
            "json",
            SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE="true",
        )
    )
    endpoint_id, secret = created["id"], created["secret"]
    assert endpoint_id.startswith("wh_")
    assert secret.startswith("whsec_")
    assert created["url"] == receiver.url

    # The day after the baseline windows closed: one email and one webhook per patient.
    out = cli.ok("alerts", "scan", "--on", INFUSED.isoformat())
    assert out.startswith(f"scan as of Rome {INFUSED}: assessment.overdue 4,")
    # The same day read in full finds nothing the (incremental) scans have not written.
    full = cli.ok("alerts", "scan", "--full", "--on", INFUSED.isoformat())
    assert full.startswith(f"scan as of Rome {INFUSED}: assessment.overdue 0,")

    # Delivery checks the address again: 127.0.0.1 is reached only where it is allowed.
    assert cli.ok("alerts", "dispatch", SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE="true").strip() == (
        "claimed 4: sent 4, retrying 0, failed 0, cancelled 0, held 0"
    )
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "assessment.overdue"
    listed = cli.ok("alerts", "list", "--status", "sent")
    rows = [line.split() for line in listed.splitlines()[2:]]
    assert (
        sorted(row[:4] for row in rows)
        == [["sent", "assessment.overdue", "0", "email"]] * 2
        + [["sent", "assessment.overdue", "0", "webhook"]] * 2
    )
    assert set(receiver.ids()) <= {row[-1] for row in rows}  # ids listed in full

    # Rotation, then a replay: the same ids again, signed with both secrets.
    new_secret = cli.ok("webhooks", "rotate-secret", endpoint_id).split()[2]
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    assert cli.ok(
        "alerts", "replay", "--endpoint", endpoint_id, "--since", "2024-01-01"
    ).strip() == (f"queued 2 alert(s) for {endpoint_id} again")
    assert "sent 2" in cli.ok("alerts", "dispatch", SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE="true")
    assert sorted(receiver.ids()[2:]) == sorted(receiver.ids()[:2])
    for request in receiver.requests[2:]:
        Webhook(secret).verify(request.body, request.headers)
        Webhook(new_secret).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("alerts", "list", "--status", "lost"), "unknown status 'lost'"),
        (("alerts", "retry", "nope"), "no alert 'nope'"),
        (("webhooks", "disable", "wh_nope"), "no webhook endpoint 'wh_nope'"),
    ],
)
def test_refused_commands_say_why_without_a_traceback(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    assert message in cli.fails(*args)
