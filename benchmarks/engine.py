"""Calendars per second from the pure rules engine (no database).

For each protocol (the CD19 CAR-T paediatric protocol and the AAV liver protocol), draw
``--patients`` random patients (seeded): infusion on a random day of 2018-2025, age at
infusion 5-17 with SLE, SSc or JDM for CAR-T, 18-65 with a haemophilia diagnosis for
AAV. The patients are drawn first; only the ``rules.build_calendar`` calls are timed,
in wall time and in this process's CPU time (steadier on a shared machine);
``--repeat`` keeps the fastest of several passes.

    .venv/bin/python benchmarks/engine.py [--patients 2000] [--seed 2026]

Prints readable lines, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date
from typing import Any

from _common import AAV, CAR_T, emit, random_patient, rate

import rules


def bench_protocol(
    protocol: rules.Protocol, patients: int, seed: int, repeat: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    cohort = [random_patient(rng, i, protocol.id) for i in range(patients)]
    calls: list[tuple[rules.PatientFacts, list[date]]] = [
        (rules.PatientFacts(p.birth_date, p.diagnosis, p.sex), [p.infusion_date]) for p in cohort
    ]
    best = best_cpu = float("inf")
    rows = 0
    for _ in range(repeat):
        rows = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        for facts, infusions in calls:
            rows += len(rules.build_calendar(protocol, facts, infusions))
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu_start)
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=2000, help="random patients per protocol")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=1, help="repeat the run, keep the fastest")
    parser.add_argument("--protocol", action="append", choices=[CAR_T, AAV], help="default: both")
    args = parser.parse_args()

    registry = rules.ProtocolRegistry.from_directory()
    results: dict[str, Any] = {}
    for protocol_id in args.protocol or [CAR_T, AAV]:
        figures = bench_protocol(registry.get(protocol_id), args.patients, args.seed, args.repeat)
        results[protocol_id] = figures
        print(
            f"{protocol_id} {figures['version']}: {figures['patients']} calendars in "
            f"{figures['seconds']:.2f} s = {figures['calendars_per_s']:,.0f} calendars/s, "
            f"{figures['rows_per_s']:,.0f} rows/s, {figures['ms_per_calendar']:.2f} ms/calendar, "
            f"{figures['mean_rows_per_calendar']:.1f} rows/calendar "
            f"({figures['calendars_per_cpu_s']:,.0f} calendars per CPU second)"
        )
    emit(
        {"benchmark": "engine", "patients": args.patients, "seed": args.seed, "protocols": results}
    )


if __name__ == "__main__":
    main()
