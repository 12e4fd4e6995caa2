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
from surveillance.config import get_settings
from surveillance.kit.clock import system_clock
from surveillance.kit.ics import CalendarEvent, calendar_ics
from surveillance.kit.text_table import render
from surveillance.protocols.views import preview_calendar

commands = typer.Typer()
protocols_app = typer.Typer(
    help="Protocol files: list, check (structure and evidence) and document.",
    no_args_is_help=True,
)


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
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Protocol YAML files; default: every file this installation loads."),
    ] = None,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="Also list each protocol's rows by basis, their sources and the unverified "
            "claims ([S~]); fail on a row whose basis is stronger than its evidence, in the "
            "newest version of each protocol (an older version's findings are warnings).",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="With --evidence: a source without a 'kind' that might support the basis "
            "fails the row too (default: a warning).",
        ),
    ] = False,
) -> None:
    """Validate protocol files; exit 1 with the reason if any is malformed (or, with
    --evidence, if a row's basis claims more than its note and sources support)."""
    paths = files or sorted(get_settings().protocols_dir.glob("*.yaml"))
    failed = 0
    loaded: list[rules.Protocol] = []
    for path in paths:
        try:
            protocol = rules.load_protocol(path)
        except rules.ProtocolError as exc:
            failed += 1
            typer.echo(f"error: {exc}", err=True)
            continue
        loaded.append(protocol)
        typer.echo(
            f"ok: {path}: {protocol.id} version {protocol.version}, "
            f"{len(protocol.rules)} assessments"
        )
    if evidence:
        reports = rules.check_all_evidence(loaded, strict=strict, source=lambda p: _shown(p.source))
        for report in reports:
            typer.echo("")
            typer.echo(rules.format_evidence_report(report))
        typer.echo("")
        typer.echo(rules.summarize(reports))
        for report in reports:
            for error in report.errors:
                failed += 1
                typer.echo(str(error), err=True)
    if failed:
        raise typer.Exit(1)


def _shown(source: str) -> str:
    """A protocol file's path as findings name it: relative to here when it is below."""
    path = Path(source).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@protocols_app.command("doc")
def protocols_doc(
    protocol: Annotated[
        str | None, typer.Option(help="Protocol id; required unless --output-dir.")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Protocol version; default the newest.")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            help="Write one page per protocol version (every one, or those of --protocol) "
            "into this folder as <id>-<version>.md, instead of printing one page."
        ),
    ] = None,
) -> None:
    """A protocol as a Markdown page for review: each assessment's schedule, windows,
    branches, basis and sources with the note (e.g. > docs/protocols/<id>-<version>.md)."""
    registry = protocol_registry()
    if output_dir is None:
        if protocol is None:
            typer.echo("error: name the protocol with --protocol, or give --output-dir", err=True)
            raise typer.Exit(2)
        sys.stdout.write(rules.protocol_markdown(registry.get(protocol, version)))
        return
    chosen = [
        p
        for p in registry.all()
        if (protocol is None or p.id == protocol) and (version is None or p.version == version)
    ]
    if not chosen:
        registry.get(protocol or "", version)  # raises UnknownProtocol, naming the known ones
    output_dir.mkdir(parents=True, exist_ok=True)
    for p in chosen:
        target = output_dir / rules.page_name(p)
        target.write_text(rules.protocol_markdown(p), encoding="utf-8")
        typer.echo(f"wrote {target}")


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
        made = system_clock()  # a preview has no stored rows: made now, never revised
        entries = [
            CalendarEvent(
                uid=f"{chosen.id}-{infused}-{p.key}@preview.ltfu-surveillance",
                summary=f"{p.name} (#{p.occurrence})",
                day=p.due,
                window_start=p.window_start,
                window_end=p.window_end,
                description=p.reason,
                sequence=0,
                last_modified=made,
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
