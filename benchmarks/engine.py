"""Calendars per second from the pure rules engine (no database).

For each protocol (the CD19 CAR-T paediatric protocol and the AAV liver protocol), draw
``--patients`` random patients (seeded): infusion on a random day of 2018-2025, age at
infusion 5-17 with SLE, SSc or JDM for CAR-T, 18-65 with a haemophilia diagnosis for
AAV. The patients are drawn first; only the ``rules.build_calendar`` calls are timed,
in wall time and in this process's CPU time (steadier on a shared machine);
``--repeat`` keeps the fastest of several passes. ``--car-t-version 1.0`` benchmarks the
CAR-T protocol's first version (the newest is the default).

The raw baseline (issue 15) runs in the same process on the same patients: a plain loop
over the protocol's schedule as bare data (tuples), one ``relativedelta`` per row, no engine
object, that writes the same rows (every non-conditional rule's due date, window and reason;
these patients have no results and no events). Its rows are checked equal to the engine's
before anything is timed, so the baseline does all the work the engine does for them. The
figure to watch is ``engine_to_raw``: engine calendars/s over raw calendars/s.

    .venv/bin/python benchmarks/engine.py [--patients 2000] [--seed 2026]

Prints readable lines, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from _common import AAV, CAR_T, emit, random_patient, rate
from dateutil.relativedelta import relativedelta

import rules

# One output row, as the engine's PlannedAssessment fields in order.
Row = tuple[int, str, int, str, str, date, date, date, str, str, str, str]
# One time point of the raw schedule: number, unit keyword, amount, window before, after.
RawPoint = tuple[int, str, int, int, int]
# One rule of the raw schedule: id, name, category, basis, birth-anchored, goes past the
# study's end (a hand-over), diagnoses or None, age from or None, age below or None, points.
RawRule = tuple[
    str,
    str,
    str,
    str,
    bool,
    bool,
    frozenset[str] | None,
    int | None,
    int | None,
    list[RawPoint],
]
Patient = tuple[date, str, date]  # birth, diagnosis, infusion

_KEYWORD = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
_WORD = {"days": "day", "weeks": "week", "months": "month", "years": "year"}


def raw_schedule(protocol: rules.Protocol) -> tuple[str, str, str, int, list[RawRule]]:
    """The protocol as bare data: what a hand-written loop would hard-code."""
    duration = protocol.spec.follow_up.duration
    table: list[RawRule] = []
    for rule_id in protocol.order:
        spec = protocol.rules[rule_id].spec
        if spec.anchor.value == "trigger" or spec.starts != "with_infusion":
            continue  # conditional: never due without results or events
        applies = spec.applies_to
        points = [
            (
                p.number,
                _KEYWORD[p.offset.unit],
                p.offset.amount,
                p.window.before,
                p.window.after,
            )
            for p in protocol.rules[rule_id].points
        ]
        table.append(
            (
                rule_id,
                spec.name,
                spec.category,
                spec.evidence.basis.value,
                spec.anchor.value == "birth",
                spec.after_study,
                None if applies.diagnoses is None else frozenset(applies.diagnoses),
                applies.age_from,
                applies.age_below,
                points,
            )
        )
    return protocol.id, protocol.version, _KEYWORD[duration.unit], duration.amount, table


def _raw_ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def raw_calendar(schedule: tuple[str, str, str, int, list[RawRule]], patient: Patient) -> list[Row]:
    """The raw baseline: one patient's rows by a plain relativedelta loop."""
    protocol_id, version, unit, amount, table = schedule
    birth, diagnosis, infusion = patient
    end = infusion + relativedelta(**{unit: amount})
    infused, born, ends = infusion.isoformat(), birth.isoformat(), end.isoformat()
    rows: list[Row] = []
    for rule in table:
        rule_id, name, category, basis, by_birth, after_study, diagnoses = rule[:7]
        age_from, age_below, points = rule[7:]
        if diagnoses is not None and diagnosis not in diagnoses:
            continue
        anchor = birth if by_birth else infusion
        for number, keyword, count, before, after in points:
            due = anchor + relativedelta(**{keyword: count})
            if (due > end and not after_study) or (by_birth and due < infusion):
                continue
            if age_from is not None or age_below is not None:
                age = relativedelta(due, birth).years
                if (age_from is not None and age < age_from) or (
                    age_below is not None and age >= age_below
                ):
                    continue
            word = _WORD[keyword]
            if count < 0:
                what = f"{-count} {word}{'s' if count != -1 else ''} before infusion of {infused}"
            elif by_birth and keyword == "years":
                what = f"{_raw_ordinal(count)} birthday (born {born})"
            elif by_birth:
                what = f"{word} {count} after birth on {born}"
            else:
                what = f"{word} {count} after infusion of {infused}"
            opens = "0" if before == 0 else f"\u2212{-before}"
            reason = f"{what}; window {opens}/+{after} days"
            window_end = due + timedelta(days=after)
            if window_end > end and not after_study:
                window_end = end
                reason += ", closing at the end of follow-up"
            if after_study and due > end:
                reason += f"; after the end of study follow-up on {ends} (hand-over)"
            rows.append(
                (
                    1,
                    rule_id,
                    number,
                    name,
                    category,
                    due,
                    due + timedelta(days=before),
                    window_end,
                    protocol_id,
                    version,
                    reason,
                    basis,
                )
            )
    rows.sort(key=lambda r: (r[5], r[1], r[0], r[2]))
    return rows


def _engine_rows(calendar: list[rules.PlannedAssessment]) -> list[Row]:
    return [
        (
            a.infusion,
            a.assessment,
            a.occurrence,
            a.name,
            a.category,
            a.due,
            a.window_start,
            a.window_end,
            a.protocol,
            a.protocol_version,
            a.reason,
            a.basis,
        )
        for a in calendar
    ]


def _timed(one_pass: Callable[[], int]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one pass, and the rows it made."""
    start, cpu_start = time.perf_counter(), time.process_time()
    rows = one_pass()
    return time.perf_counter() - start, time.process_time() - cpu_start, rows


def bench_protocol(
    protocol: rules.Protocol, patients: int, seed: int, repeat: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    cohort = [random_patient(rng, i, protocol.id) for i in range(patients)]
    calls: list[tuple[rules.PatientFacts, list[date]]] = [
        (rules.PatientFacts(p.birth_date, p.diagnosis, p.sex), [p.infusion_date]) for p in cohort
    ]
    schedule = raw_schedule(protocol)
    raw_patients: list[Patient] = [(p.birth_date, p.diagnosis, p.infusion_date) for p in cohort]
    # An honest baseline: the same rows, field by field, for every patient.
    for (facts, infusions), raw_patient in zip(calls, raw_patients, strict=True):
        engine_rows = _engine_rows(rules.build_calendar(protocol, facts, infusions))
        if raw_calendar(schedule, raw_patient) != engine_rows:
            raise SystemExit(f"raw baseline differs from the engine for {raw_patient}")

    def engine_pass() -> int:
        return sum(len(rules.build_calendar(protocol, f, i)) for f, i in calls)

    def raw_pass() -> int:
        return sum(len(raw_calendar(schedule, p)) for p in raw_patients)

    # Engine and raw passes alternate, so a busy spell of the machine hits both alike.
    best = best_cpu = raw_best = raw_best_cpu = float("inf")
    rows = 0
    for _ in range(repeat):
        seconds, cpu_seconds, rows = _timed(engine_pass)
        best, best_cpu = min(best, seconds), min(best_cpu, cpu_seconds)
        seconds, cpu_seconds, _ = _timed(raw_pass)
        raw_best, raw_best_cpu = min(raw_best, seconds), min(raw_best_cpu, cpu_seconds)
    return {
        "protocol": protocol.id,
        "version": protocol.version,
        "patients": patients,
        "seconds": round(best, 4),
        "calendars_per_s": rate(patients, best),
        "rows_per_s": rate(rows, best),
        "ms_per_calendar": round(best / patients * 1000, 4),
        "mean_rows_per_calendar": round(rows / patients, 2),
        # CPU time of this process: steadier than wall time when the machine is shared.
        "cpu_seconds": round(best_cpu, 4),
        "calendars_per_cpu_s": rate(patients, best_cpu),
        "rows": rows,
        "raw_seconds": round(raw_best, 4),
        "raw_calendars_per_s": rate(patients, raw_best),
        "raw_cpu_seconds": round(raw_best_cpu, 4),
        "raw_calendars_per_cpu_s": rate(patients, raw_best_cpu),
        # The figure: engine over raw (1.0 = as fast as the plain loop).
        "engine_to_raw": round(raw_best / best, 3),
        "engine_to_raw_cpu": round(raw_best_cpu / best_cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=2000, help="random patients per protocol")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=1, help="repeat the run, keep the fastest")
    parser.add_argument("--protocol", action="append", choices=[CAR_T, AAV], help="default: both")
    parser.add_argument(
        "--car-t-version", help="default: the newest (issue 15 measured 1.0, 229 rows/calendar)"
    )
    args = parser.parse_args()

    registry = rules.ProtocolRegistry.from_directory()
    results: dict[str, Any] = {}
    for protocol_id in args.protocol or [CAR_T, AAV]:
        version = args.car_t_version if protocol_id == CAR_T else None
        protocol = registry.get(protocol_id, version)
        figures = bench_protocol(protocol, args.patients, args.seed, args.repeat)
        results[protocol_id] = figures
        print(
            f"{protocol_id} {figures['version']}: {figures['patients']} calendars in "
            f"{figures['seconds']:.2f} s = {figures['calendars_per_s']:,.0f} calendars/s, "
            f"{figures['rows_per_s']:,.0f} rows/s, {figures['ms_per_calendar']:.2f} ms/calendar, "
            f"{figures['mean_rows_per_calendar']:.1f} rows/calendar "
            f"({figures['calendars_per_cpu_s']:,.0f} calendars per CPU second)"
        )
        print(
            f"  raw loop: {figures['raw_calendars_per_s']:,.0f} calendars/s "
            f"({figures['raw_calendars_per_cpu_s']:,.0f} per CPU second); engine/raw = "
            f"{figures['engine_to_raw']:.2f} ({figures['engine_to_raw_cpu']:.2f} in CPU time)"
        )
    emit(
        {"benchmark": "engine", "patients": args.patients, "seed": args.seed, "protocols": results}
    )


if __name__ == "__main__":
    main()
