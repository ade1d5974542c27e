"""`koppla status`: how the pipeline, datasets, quarantine, spool and profiles are doing."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from koppla.cli.common import HomeOption, console, settings
from koppla.core import codec


def status(
    home: HomeOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pipeline (running, last error, restarts), datasets, quarantine, spool, profiles."""
    from koppla.web.services import build_services
    from koppla.web.status import status as home_status

    services = build_services(settings(home))
    try:
        report = home_status(services)
    finally:
        services.close()
    if json:
        sys.stdout.write(codec.dumps(report).decode() + "\n")
    else:
        print_report(report)


def print_report(report: dict[str, Any]) -> None:
    """The status report for people, one line per thing."""
    from koppla.web.status import describe_pipeline

    for line in describe_pipeline(report["pipeline"]):
        console.print(line, markup=False, highlight=False)
    for d in report["datasets"]:
        console.print(f"dataset [bold]{d['name']}[/]: {d['rows']} rows; {_last_batch(d)}")
    console.print(f"quarantine: {report['quarantinedRecords']} records")
    for s in report["spool"]:
        bytes_ = s.get("backlogBytes")
        waiting = f"{bytes_} bytes" if bytes_ is not None else f"{s['backlogRecords']} records"
        console.print(f"spool {s['stream']}: {waiting} waiting to be stored")
    console.print(_profiles(report["profiles"]))
    for s in report["datastreams"]:
        console.print(f"datastream {s['id']}: {s['counters'] or 'no counters'}")


def _last_batch(dataset: dict[str, Any]) -> str:
    last = dataset["lastBatch"]
    if last is None:
        return "no batch yet"
    return (
        f"last batch {last['status']} at {last['at']} "
        f"({last['records']} stored, {last['failedRecords']} failed)"
    )


def _profiles(p: dict[str, Any]) -> str:
    waiting = ", ".join(f"{k} {v}" for k, v in p["commitsWaiting"].items()) or "none"
    stage = (
        "profile stage: no pass yet"
        if p["lastPassAgeS"] is None
        else f"profile stage: last pass {p['lastPassAgeS']:.0f} s ago"
    )
    return (
        f"profiles: {p['profiles']} profiles, {p['identities']} identities, "
        f"{p['guardrailHits']} guardrail hits; dataset commits not yet read: {waiting}; {stage}"
    )
