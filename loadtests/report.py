"""Turning one benchmark run (a dict, also saved as JSON) into the Markdown report, and judging the targets."""
from __future__ import annotations

import json
from pathlib import Path

# The published system's figures (ECS Fargate behind an ALB; Locust at 50/100/200 users; 1,000 shipments and
# 5,000 events pre-loaded). Only the figures are kept here.
PAPER = {
    "avg_ms": 142, "p95_ms_below": 280, "rps": 310, "users": 200, "shipments": 1000, "events": 5000,
    "setup": "ECS Fargate tasks behind an ALB, PostgreSQL; Locust at 50, 100, 200 users (task count not stated)",
}

TRACK = "GET /track/[id]"
SEARCH = "GET /search/[mobile]"
CREATE = "POST /create"
HEALTHZ = "GET /healthz"
FULL_SCALE = 1_000_000


def _probe(result: dict, label: str) -> dict | None:
    for run in (result.get("probes") or {}).get("runs", []):
        if run["label"] == label:
            return run
    return None


def healthz_ceiling(result: dict) -> float | None:
    """Mean requests/s of the /healthz probes (run first and last, so drift shows)."""
    values = [run["endpoints"][HEALTHZ]["rps"] for label in ("probe-healthz", "probe-healthz_again")
              if (run := _probe(result, label)) and HEALTHZ in run["endpoints"]]
    return sum(values) / len(values) if values else None


def _mixed(result: dict, users: int) -> dict | None:
    for run in (result.get("mixed") or {}).get("runs", []):
        if run["users"] == users:
            return run
    return None


def _target(name: str, target: str, measured: str, met: bool | None, note: str = "") -> dict:
    return {"name": name, "target": target, "measured": measured, "met": met, "note": note}


def evaluate_targets(result: dict) -> list[dict]:
    """Issue 5's targets, each with the measured figure and whether it is met (None: not measured)."""
    targets = []
    ceiling = healthz_ceiling(result)
    track_probe, create_probe = _probe(result, "probe-track"), _probe(result, "probe-create")
    for endpoint, probe, share, title in ((TRACK, track_probe, 0.5, "GET /track/<id> JSON throughput"),
                                          (CREATE, create_probe, 0.2, "POST /create throughput")):
        row = probe["endpoints"].get(endpoint) if probe else None
        if ceiling and row:
            ratio = row["rps"] / ceiling
            targets.append(_target(title, f">= {share:g} x /healthz req/s (each alone, same run)",
                                   f"{row['rps']:.0f} req/s = {ratio:.2f} x /healthz ({ceiling:.0f} req/s)",
                                   ratio >= share))
        else:
            targets.append(_target(title, f">= {share:g} x /healthz req/s", "not measured", None))

    mixed200 = _mixed(result, 200)
    row = mixed200["endpoints"].get(TRACK) if mixed200 else None
    if row:
        targets.append(_target("GET /track/<id> JSON p95", "< 100 ms at 200 users (paper scenario)",
                               f"{row['p95_ms']:.0f} ms", row["p95_ms"] < 100,
                               "mixed run at 200 users with think times; the probe's p95 is in the table below"))
    else:
        targets.append(_target("GET /track/<id> JSON p95", "< 100 ms at 200 users", "not measured", None))

    create_failures, create_requests, places = 0, 0, 0
    for run in [*((result.get("mixed") or {}).get("runs", [])), *([create_probe] if create_probe else [])]:
        row = run["endpoints"].get(CREATE)
        if row:
            create_failures += row["failures"]
            create_requests += row["requests"]
            places += 1
    if places:
        targets.append(_target("POST /create failures", "0 at every level",
                               f"{create_failures} of {create_requests:,} requests ({places} runs)",
                               create_failures == 0))
    else:
        targets.append(_target("POST /create failures", "0 at every level", "not measured", None))

    sizes = (result.get("scaling") or {}).get("sizes", [])
    for key, title in (("track", "Tracking latency as data grows"), ("search", "Mobile search latency as data grows")):
        if len(sizes) >= 2 and sizes[0].get(key, {}).get("avg_ms") and sizes[-1].get(key, {}).get("avg_ms"):
            small, large = sizes[0], sizes[-1]
            ratio = large[key]["avg_ms"] / small[key]["avg_ms"]
            full = large["target"] >= FULL_SCALE
            targets.append(_target(
                title, f"avg at {FULL_SCALE:,} shipments <= 1.5 x avg at 1,000",
                f"{large[key]['avg_ms']:.0f} ms at {large['shipments']:,} vs {small[key]['avg_ms']:.0f} ms at "
                f"{small['shipments']:,} = {ratio:.2f} x", (ratio <= 1.5) if full else None,
                "" if full else f"largest size in this run is {large['target']:,}: not judged"))
        else:
            targets.append(_target(title, "<= 1.5 x at 1,000,000 shipments", "not measured", None))

    email = result.get("email") or {}
    steady = email.get("steady") or {}
    if steady.get("emails_per_s"):
        targets.append(_target("Emails delivered by one worker", ">= 200 emails/s to a local SMTP server",
                               f"{steady['emails_per_s']:.0f} emails/s over {steady['connections']} connection(s)",
                               steady["emails_per_s"] >= 200))
    else:
        targets.append(_target("Emails delivered by one worker", ">= 200 emails/s",
                               email.get("status", "not measured"), None))
    return targets


# --- Markdown -------------------------------------------------------------------------------------------------

def _ms(value) -> str:
    return "–" if value in (None, "") else f"{value:.0f}"


def _met(value: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not judged"}[value]


def _endpoint_rows(endpoints: dict) -> list[str]:
    return [f"| {name} | {row['requests']:,} | {row['rps']:.1f} | {_ms(row['avg_ms'])} | {_ms(row['p50_ms'])} | "
            f"{_ms(row['p95_ms'])} | {_ms(row['p99_ms'])} | {row['failures']} |"
            for name, row in sorted(endpoints.items())]


def _notifier_text(server: dict) -> str:
    """Where the outbox worker ran (reports written before `notifier` existed only say thread on or off)."""
    notifier = server.get("notifier") or ("thread" if server["notify_worker_in_web"] else "off")
    return {"process": "outbox worker as its own process (`flask notifications worker` at idle CPU priority, "
                       "`chrt --idle`; NOTIFY_WORKER_IN_WEB=false)",
            "thread": "outbox worker thread in every Gunicorn worker (NOTIFY_WORKER_IN_WEB=true)",
            "off": "no outbox worker"}[notifier]


def _cpu_cells(cpu: dict) -> str:
    return (f"{cpu.get('generator_pct', 0):.0f}% | {cpu.get('server_pct', 0):.0f}% | {cpu.get('database_pct', 0):.0f}% "
            f"| {cpu.get('other_pct', 0):.0f}% | {cpu.get('idle_pct', 0):.0f}%")


def render_markdown(result: dict) -> str:
    machine, server, db = result["machine"], result["server"], result["database"]
    lines = [
        f"# Waybill benchmark: {result['name']}",
        "",
        f"{result['started_at'][:16].replace('T', ' ')} UTC, {result['mode']} run, {result['duration_s']} s, "
        f"commit `{result['git']['commit']}`{' (app/ had uncommitted changes)' if result['git']['dirty'] else ''}.",
        "",
        f"- **Machine:** {machine['cores']} cores ({machine['cpu_model'] or 'unknown CPU'}), "
        f"{machine['memory_gib']} GiB, Python {machine['python']}. Server, database and load generator share it.",
        f"- **Database:** {db['engine']} on the same machine; seeded with {db['seeded']['shipments']:,} shipments "
        f"and {db['seeded']['events']:,} tracking events (`flask seed-demo`).",
        f"- **Server:** Gunicorn with gunicorn.conf.py: `{server['worker_class']}`, {server['workers']} workers"
        f"{' x ' + str(server['threads']) + ' threads' if server['worker_class'] == 'gthread' else ''}; "
        f"access log {'on' if server['accesslog'] else 'off'}, rate limits off, MAIL_BACKEND=console, "
        f"{_notifier_text(server)}, LOG_LEVEL=WARNING.",
        f"- **Generator:** {result['generator']['tool']} (Locust {result['generator']['version']}), headless, "
        "on 127.0.0.1. Its CPU share is in every table: compare endpoints only within one run.",
        "",
        "## Targets (issue 5)",
        "",
        "| target | goal | measured | status |",
        "| --- | --- | --- | --- |",
    ]
    for target in result.get("targets", []):
        note = f" ({target['note']})" if target.get("note") else ""
        lines.append(f"| {target['name']} | {target['target']} | {target['measured']}{note} | "
                     f"{_met(target['met'])} |")

    mixed200 = _mixed(result, 200)
    paper = result["paper"]
    lines += ["", "## Against the paper (200 users, mixed scenario)", "",
              "| | paper | ours |", "| --- | --- | --- |"]
    if mixed200 and mixed200["total"]:
        total = mixed200["total"]
        lines += [
            f"| average latency | {paper['avg_ms']} ms | {total['avg_ms']:.0f} ms |",
            f"| p95 latency | < {paper['p95_ms_below']} ms | {total['p95_ms']:.0f} ms |",
            f"| throughput | ~{paper['rps']} req/s | {total['rps']:.0f} req/s |",
            f"| failures | not stated | {total['failures']} of {total['requests']:,} |",
        ]
    else:
        lines.append("| (mixed phase not run) | | |")
    lines += [
        f"| data | {paper['shipments']:,} shipments / {paper['events']:,} events | "
        f"{db['seeded']['shipments']:,} shipments / {db['seeded']['events']:,} events |",
        f"| hardware | {paper['setup']} | {machine['cores']} cores shared by server, PostgreSQL and Locust |",
    ]

    ceiling = healthz_ceiling(result)
    probes = result.get("probes")
    if probes:
        lines += ["", f"## Each endpoint alone ({probes['users']} users, no think time, {probes['seconds']} s each)",
                  "", "Requests/s as a fraction of /healthz (the same app doing no database work) is the "
                  "comparison that means something here; /healthz ran first and last.", "",
                  "| probe | req/s | x /healthz | avg ms | p50 | p95 | p99 | failures | generator CPU | "
                  "Gunicorn | PostgreSQL | other | idle |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for run in probes["runs"]:
            for name, row in run["endpoints"].items():
                ratio = f"{row['rps'] / ceiling:.2f}" if ceiling else "–"
                lines.append(f"| {run['label'].removeprefix('probe-')}: {name} | {row['rps']:.0f} | {ratio} | "
                             f"{_ms(row['avg_ms'])} | {_ms(row['p50_ms'])} | {_ms(row['p95_ms'])} | "
                             f"{_ms(row['p99_ms'])} | {row['failures']} | {_cpu_cells(run['cpu'])} |")
        lines.append("")
        lines.append("CPU columns are shares of the whole machine over the run (100% = all cores busy); "
                     "\"Gunicorn\" includes the notifier process when it runs as one.")
        backlog = probes.get("create_backlog")
        if backlog:
            sent = (f"all sent {backlog['drained_in_s']:.1f} s after it ended" if not backlog["left"] else
                    f"{backlog['left']:,} still waiting {backlog['drained_in_s']:.0f} s after it ended")
            lines.append(f"Outbox after the create probe: {backlog['waiting_at_end']:,} messages waiting, {sent} "
                         "(measured before the next probe started).")

    mixed = result.get("mixed")
    if mixed:
        lines += ["", f"## Mixed scenario (loadtests/locustfile.py, {mixed['seconds']} s per level)", ""]
        for run in mixed["runs"]:
            total = run["total"]
            lines += [f"### {run['users']} users", "",
                      "| endpoint | requests | req/s | avg ms | p50 | p95 | p99 | failures |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- |", *_endpoint_rows(run["endpoints"])]
            if total:
                lines.append(f"| **all** | {total['requests']:,} | {total['rps']:.1f} | {_ms(total['avg_ms'])} | "
                             f"{_ms(total['p50_ms'])} | {_ms(total['p95_ms'])} | {_ms(total['p99_ms'])} | "
                             f"{total['failures']} |")
            lines += ["", "CPU (generator / Gunicorn / PostgreSQL / other / idle): "
                      + " / ".join(_cpu_cells(run["cpu"]).split(" | ")), ""]
            for failure in run["failures"][:5]:
                lines.append(f"- {failure['count']} x {failure['endpoint']}: {failure['error']}")
            if run["failures"]:
                lines.append("")

    scaling = result.get("scaling")
    if scaling:
        lines += ["", f"## Scaling ({scaling['users']} users, each probe alone, {scaling['seconds']} s)", "",
                  "| shipments | events | track req/s | track avg ms | track p95 | search req/s | search avg ms | "
                  "search p95 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for size in scaling["sizes"]:
            track, search = size["track"], size["search"]
            events = f"{size['events']:,}" if size.get("events") else "–"
            lines.append(f"| {size['shipments']:,} | {events} | {track.get('rps', 0):.0f} | "
                         f"{_ms(track.get('avg_ms'))} | {_ms(track.get('p95_ms'))} | {search.get('rps', 0):.0f} | "
                         f"{_ms(search.get('avg_ms'))} | "
                         f"{_ms(search.get('p95_ms'))} |")

    email = result.get("email") or {}
    lines += ["", "## Email (one `flask notifications drain` into a local aiosmtpd sink)", ""]
    if email.get("status") == "measured":
        lines += ["| run | queued | received | duplicates | connections | emails/s (first to last) | "
                  "command time s | outbox states after |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for scenario in ("steady", "stalled"):
            run = email.get(scenario)
            if run:
                label = scenario if not run["stall_s"] else f"sink stalls {run['stall_s']:.0f} s once"
                lines.append(f"| {label} | {run['queued']} | {run['received']} | {run['duplicates']} | "
                             f"{run['connections']} | {run['emails_per_s']} | {run['command_s']} | "
                             f"{json.dumps(run['states'])} |")
    else:
        lines.append(email.get("status", "not measured"))

    disturbed = [run["label"] for section in ("probes", "mixed") for run in (result.get(section) or {}).get("runs", [])
                 if run["cpu"].get("other_pct", 0) > 10]
    restarts = result["server"].get("restarts_during_run", 0)
    lines += ["", "## Method", ""]
    if restarts:
        lines.append(f"- **Gunicorn was ended from outside the benchmark {restarts} time(s)** (SIGTERM from another "
                     "job on this shared machine); it was started again and the run it hit was measured again.")
    if disturbed:
        lines.append(f"- Other work on the machine took more than 10% of it during: {', '.join(disturbed)}. "
                     "Ratios within those runs hold up better than their absolute figures.")
    lines += ["- One command: `loadtests/bench.sh` (see docs/benchmark.md). The database is dropped and created, "
              "migrated with `flask db upgrade` and seeded before the server starts.",
              "- Locust's `--reset-stats` drops the ramp-up; requests/s is over the measured window.",
              "- A 409 from two operators moving one shipment at once is counted on its own row, not as a failure.",
              "- CPU: Locust from the benchmark's child-process accounting, Gunicorn from its process tree, "
              "PostgreSQL from every `postgres` process (all databases), 'other' is the rest of the machine's busy "
              "time (anything else running on the machine at the time).", ""]
    return "\n".join(lines)


def write_report(result: dict, out_dir: Path, name: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    md_path.write_text(render_markdown(result))
    return md_path, json_path


if __name__ == "__main__":  # re-render a report from its JSON: python loadtests/report.py results/x.json
    import sys

    for argument in sys.argv[1:]:
        source = Path(argument)
        data = json.loads(source.read_text())
        data["targets"] = evaluate_targets(data)
        write_report(data, source.parent, source.stem)
        print(f"rewrote {source.with_suffix('.md')}")
