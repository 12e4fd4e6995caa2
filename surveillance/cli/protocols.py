"""Protocol files, no database: ``surveillance calendar`` and ``surveillance protocols ...``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

import rules
from surveillance.cli.context import DateOption, protocol_registry
from surveillance.kit.ics import calendar_ics
from surveillance.kit.text_table import render
from surveillance.protocols.views import preview_calendar

commands = typer.Typer()
protocols_app = typer.Typer(help="Protocol files: list and check.", no_args_is_help=True)


class CalendarFormat(StrEnum):
    table = "table"
    json = "json"
    ics = "ics"


@protocols_app.command("list")
def protocols_list() -> None:
    """The protocols this installation knows, newest version of each last."""
    rows = [
        (
            p.id,
            p.version,
            len(p.rules),
            str(p.spec.follow_up.duration),
            p.title,
            Path(p.source).name,
        )
        for p in protocol_registry().all()
    ]
    typer.echo(render(("protocol", "version", "assessments", "follow-up", "title", "file"), rows))


@protocols_app.command("check")
def protocols_check(
    files: Annotated[list[Path], typer.Argument(help="Protocol YAML files.")],
) -> None:
    """Validate protocol files; exit 1 with the reason if any is malformed."""
    failed = 0
    for path in files:
        try:
            protocol = rules.load_protocol(path)
        except rules.ProtocolError as exc:
            failed += 1
            typer.echo(f"error: {exc}", err=True)
            continue
        typer.echo(
            f"ok: {path}: {protocol.id} version {protocol.version}, "
            f"{len(protocol.rules)} assessments"
        )
    if failed:
        raise typer.Exit(1)


@commands.command("calendar")
def calendar_preview(
    protocol: Annotated[
        str, typer.Option(help="Protocol id, e.g. cd19-car-t-pediatric-autoimmune.")
    ],
    infusion: DateOption,
    birth: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Default: 10 years before the infusion."),
    ] = None,
    diagnosis: Annotated[
        str | None, typer.Option(help="Default: the protocol's first diagnosis.")
    ] = None,
    sex: Annotated[str, typer.Option(help="F or M.")] = "F",
    version: Annotated[
        str | None, typer.Option(help="Protocol version; default the newest.")
    ] = None,
    output: Annotated[CalendarFormat, typer.Option("--format")] = CalendarFormat.table,
) -> None:
    """Preview the calendar a protocol gives for one infusion (no database)."""
    infused = infusion.date()
    preview = preview_calendar(
        protocol_registry(),
        protocol,
        infusion=infused,
        birth=birth.date() if birth else None,
        diagnosis=diagnosis,
        sex=sex,
        version=version,
    )
    chosen, born, dx, plan = preview.protocol, preview.birth_date, preview.diagnosis, preview.plan
    if birth is None:
        typer.echo(
            f"note: no --birth given; assuming born {born} (10 years old at infusion)", err=True
        )
    if output is CalendarFormat.json:
        typer.echo(json.dumps([p.as_dict() for p in plan], indent=2, ensure_ascii=False))
    elif output is CalendarFormat.ics:
        entries = [
            (
                f"{chosen.id}-{infused}-{p.key}@preview.ltfu-surveillance",
                f"{p.name} (#{p.occurrence})",
                p.due,
                p.window_start,
                p.window_end,
                p.reason,
            )
            for p in plan
        ]
        sys.stdout.write(calendar_ics(entries, name=f"{chosen.title} from {infused}").decode())
    else:
        rows = [
            (p.due, p.window_start, p.window_end, p.assessment, p.occurrence, p.category, p.reason)
            for p in plan
        ]
        typer.echo(
            render(
                ("due", "window start", "window end", "assessment", "#", "category", "reason"),
                rows,
                max_width=90,
            )
        )
        typer.echo(
            f"\n{len(plan)} assessments, {chosen.id} version {chosen.version}, "
            f"diagnosis {dx}, born {born}"
        )
