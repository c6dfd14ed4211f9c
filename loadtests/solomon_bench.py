"""The dispatch solver on Solomon's 56 VRPTW instances (100 customers), against the best-known solutions.

    .venv/bin/python loadtests/solomon_bench.py                      # ../shared/data/solomon, exploration 4, 8 s
    .venv/bin/python loadtests/solomon_bench.py DIR --seconds 5 --only C101,R101

For every instance: VROOM (app.services.planning.solver, exploration --exploration on --threads threads, stopped
after --seconds) and the Clarke-Wright savings baseline (app.services.planning.savings) plan the same integer
problem (app.services.planning.solomon: ×1000, travel times rounded up). Both plans are checked twice: by
check_plan in integers and by exact_issues in unrounded Euclidean arithmetic (windows, the depot's due time,
capacity, each customer once); their distance is the exact Euclidean total. The gap is to the best-known
distance of loadtests/data/solomon_bks.csv (SINTEF's list). The BKS minimise vehicles first; VROOM here minimises
distance only, so it may use more vehicles for a shorter (even shorter than best-known) distance: both columns
are shown. A savings plan that leaves customers out (more routes than the instance's vehicles) has no gap.

Prints a Markdown report (the machine's core count, per-instance table, per-class and overall means); exits 1
when any plan breaks a rule. Raw output stays out of git: redirect it to loadtests/.work/.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parent
ROOT = LOADTESTS.parent
sys.path.insert(0, str(ROOT))

from app.services.planning.feasibility import check_plan  # noqa: E402
from app.services.planning.savings import savings  # noqa: E402
from app.services.planning.solomon import (  # noqa: E402
    EXPLORATION,
    SECONDS,
    customer_routes,
    exact_distance,
    exact_issues,
    read_instance,
    to_problem,
)
from app.services.planning.solver import solve, solver_name  # noqa: E402

BKS_FILE = LOADTESTS / "data" / "solomon_bks.csv"
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "solomon"


@dataclass
class Row:
    instance: str
    bks_vehicles: int
    bks_distance: float
    vehicles: int
    distance: float
    seconds: float
    savings_vehicles: int
    savings_distance: float
    savings_unassigned: int
    unassigned: int
    issues: list[str]

    @property
    def gap(self) -> float:
        return (self.distance / self.bks_distance - 1) * 100

    @property
    def savings_gap(self) -> float | None:
        if self.savings_unassigned:
            return None
        return (self.savings_distance / self.bks_distance - 1) * 100


def read_bks(path: Path = BKS_FILE) -> dict[str, tuple[int, float]]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {row["instance"]: (int(row["vehicles"]), float(row["distance"])) for row in csv.DictReader(lines)}


def run_instance(path: Path, bks: tuple[int, float], args: argparse.Namespace) -> Row:
    instance = read_instance(path)
    problem = to_problem(instance)
    plan = solve(problem, seconds=args.seconds, threads=args.threads, exploration=args.exploration)
    baseline = savings(problem)
    routes, baseline_routes = customer_routes(plan), customer_routes(baseline)
    issues = [f"vroom {issue}" for issue in check_plan(problem, plan) + exact_issues(instance, routes)]
    issues += [f"savings {issue}" for issue in check_plan(problem, baseline)]
    # The savings plan may leave customers out (checked by check_plan); the exact check covers the rest.
    issues += [f"savings {issue}" for issue in exact_issues(instance, baseline_routes) if "served 0 times" not in issue]
    return Row(instance=instance.name, bks_vehicles=bks[0], bks_distance=bks[1], vehicles=len(routes),
               distance=exact_distance(instance, routes), seconds=plan.seconds,
               savings_vehicles=len(baseline_routes), savings_distance=exact_distance(instance, baseline_routes),
               savings_unassigned=len(baseline.unassigned), unassigned=len(plan.unassigned), issues=issues)


def report(rows: list[Row], args: argparse.Namespace, wall: float) -> str:
    out = [f"# Solomon VRPTW, 100 customers: {solver_name()} against the best-known solutions", "",
           f"`{' '.join(sys.argv)}` on {os.cpu_count()} cores: exploration {args.exploration}, {args.threads} "
           f"threads, timeout {args.seconds} s per instance; {len(rows)} instances in {wall:.0f} s.", "",
           "| instance | BKS vehicles | BKS distance | VROOM vehicles | distance | gap % | seconds | "
           "savings vehicles | savings distance | savings gap % |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        savings_gap = "–" if row.savings_gap is None else f"{row.savings_gap:+.1f}"
        left_out = f" ({row.savings_unassigned} left out)" if row.savings_unassigned else ""
        out.append(f"| {row.instance} | {row.bks_vehicles} | {row.bks_distance:.2f} | {row.vehicles} | "
                   f"{row.distance:.2f} | {row.gap:+.2f} | {row.seconds:.1f} | {row.savings_vehicles}{left_out} | "
                   f"{row.savings_distance:.2f} | {savings_gap} |")
    out += ["", "| class | instances | BKS vehicles | VROOM vehicles | mean gap % | mean s | max s | "
            "savings mean gap % (complete plans) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    classes: dict[str, list[Row]] = {}
    for row in rows:
        letters = row.instance.rstrip("0123456789")
        classes.setdefault(letters + row.instance[len(letters)], []).append(row)  # C1, R2, RC1...
    for name, group in [*classes.items(), ("all", rows)]:
        out.append(_summary(name, group))
    unassigned = sum(row.unassigned for row in rows)
    broken = [issue for row in rows for issue in row.issues]
    out += ["", f"VROOM left {unassigned} customers unassigned. Plans breaking a rule (integer or exact check): "
            f"{len(broken)}."]
    out += [f"- {issue}" for issue in broken[:20]]
    return "\n".join(out)


def _summary(name: str, rows: list[Row]) -> str:
    complete = [row.savings_gap for row in rows if row.savings_gap is not None]
    savings_gap = f"{statistics.mean(complete):+.1f} ({len(complete)})" if complete else "–"
    return (f"| {name} | {len(rows)} | {sum(r.bks_vehicles for r in rows)} | {sum(r.vehicles for r in rows)} | "
            f"{statistics.mean(r.gap for r in rows):+.2f} | {statistics.mean(r.seconds for r in rows):.1f} | "
            f"{max(r.seconds for r in rows):.1f} | {savings_gap} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR,
                        help="folder of the Solomon instances (default: ../shared/data/solomon from the repo)")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="VROOM's timeout per instance")
    parser.add_argument("--exploration", type=int, default=EXPLORATION, choices=range(1, 6))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated instance names (default: all in the BKS file)")
    args = parser.parse_args(argv)
    bks = read_bks()
    names = [name.strip().upper() for name in args.only.split(",") if name.strip()] or sorted(bks)
    missing = [name for name in names if name not in bks or not (args.directory / f"{name}.txt").is_file()]
    if missing:
        parser.error(f"no instance file or best-known solution for {', '.join(missing)} in {args.directory}")
    started = time.perf_counter()
    rows = []
    for name in names:
        row = run_instance(args.directory / f"{name}.txt", bks[name], args)
        print(f"{row.instance}: {row.vehicles} vehicles, {row.distance:.2f} ({row.gap:+.2f} %), {row.seconds:.1f} s;"
              f" savings {row.savings_distance:.2f}", file=sys.stderr)
        rows.append(row)
    print(report(rows, args, time.perf_counter() - started))
    return 1 if any(row.issues for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
