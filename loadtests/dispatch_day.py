"""A realistic dispatch day for the solver: one hub, a city's parcels, a shift of couriers.

    .venv/bin/python loadtests/dispatch_day.py                 # 500 parcels, 10 couriers, VROOM stopped at 45 s
    .venv/bin/python loadtests/dispatch_day.py --parcels 300 --seconds 20

The day (seeded, so every run plans the same one):
- a city of 15 × 15 km around 12.9716 N, 77.5946 E, the hub at its centre, parcels spread uniformly;
- distance = great-circle (haversine) distance × 1.3 for the streets, travel time = distance at 18 km/h (a
  scooter in traffic), rounded up to the second; 3 minutes at each door;
- 70 % of the parcels promised in a 3-hour window (09–12, 12–15 or 15–18, a third each), the rest any time;
- --couriers couriers (10) of capacity --capacity parcels (60) on one shift, 09:00–19:00, leaving from and
  returning to the hub.
Both solvers plan it: VROOM (exploration --exploration, --threads threads, timeout --seconds) and the savings
baseline; both plans are checked with check_plan. Target: VROOM plans in 60 s or less, nothing unassigned.
Prints a Markdown report with the machine's core count; exits 1 when a plan breaks a rule or VROOM misses the
target.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.planning.feasibility import check_plan  # noqa: E402
from app.services.planning.problem import Plan, Problem, Stop, Vehicle  # noqa: E402
from app.services.planning.savings import savings  # noqa: E402
from app.services.planning.solver import solve, solver_name  # noqa: E402
from app.services.planning.travel import haversine_matrices  # noqa: E402

CENTRE = (12.9716, 77.5946)  # latitude, longitude
SIDE_KM = 15.0
DETOUR = 1.3  # ROAD_FACTOR's default
SPEED_KMH = 18.0  # AVERAGE_SPEED_KMH's default
SERVICE = 180
SHIFT = (9 * 3600, 19 * 3600)
SLOTS = ((9 * 3600, 12 * 3600), (12 * 3600, 15 * 3600), (15 * 3600, 18 * 3600))
WINDOWED = 0.7


def make_day(parcels: int, couriers: int, capacity: int, seed: int) -> Problem:
    rng = random.Random(seed)
    half_lat = SIDE_KM / 2 / 111.32
    half_lon = SIDE_KM / 2 / (111.32 * math.cos(math.radians(CENTRE[0])))
    points = [CENTRE] + [(CENTRE[0] + rng.uniform(-half_lat, half_lat), CENTRE[1] + rng.uniform(-half_lon, half_lon))
                         for _ in range(parcels)]
    # The travel model dispatch itself uses (app.services.planning.travel), at its default settings.
    matrices = haversine_matrices(points, road_factor=DETOUR, speed_kmh=SPEED_KMH)
    distances, durations = matrices.distances, matrices.durations
    stops = tuple(
        Stop(key=f"P{number:04d}", location=number, service=SERVICE, demand=(1,),
             windows=(rng.choice(SLOTS),) if rng.random() < WINDOWED else ())
        for number in range(1, parcels + 1))
    vehicles = tuple(Vehicle(key=f"courier-{number:02d}", start=0, end=0, capacity=(capacity,), shift=SHIFT)
                     for number in range(1, couriers + 1))
    return Problem(durations=durations, distances=distances, stops=stops, vehicles=vehicles)


def describe(name: str, problem: Problem, plan: Plan) -> tuple[str, list[str]]:
    issues = check_plan(problem, plan)
    hours = [route.duration / 3600 for route in plan.routes] or [0]
    loads = [len(route.visits) for route in plan.routes] or [0]
    last_back = max((route.arrival for route in plan.routes), default=0)
    line = (f"| {name} | {plan.seconds:.1f} | {len(plan.routes)} | {len(plan.unassigned)} | "
            f"{plan.distance / 1000:.1f} | {min(loads)}–{max(loads)} | {sum(hours) / len(hours):.1f} "
            f"(max {max(hours):.1f}) | {last_back // 3600:02d}:{last_back % 3600 // 60:02d} | {len(issues)} |")
    return line, issues


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parcels", type=int, default=500)
    parser.add_argument("--couriers", type=int, default=10)
    parser.add_argument("--capacity", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=45.0, help="VROOM's timeout")
    parser.add_argument("--exploration", type=int, default=3, choices=range(1, 6),
                        help="3: at 45 s, levels 2 and 3 plan ~15 %% shorter days than 5, which is cut short")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    problem = make_day(args.parcels, args.couriers, args.capacity, args.seed)
    built = time.perf_counter() - started
    plan = solve(problem, seconds=args.seconds, threads=args.threads, exploration=args.exploration)
    baseline = savings(problem)
    windowed = sum(1 for stop in problem.stops if stop.windows)
    rows = [describe(solver_name(), problem, plan), describe("savings", problem, baseline)]
    print("\n".join([
        f"# A dispatch day: {args.parcels} parcels, {args.couriers} couriers", "",
        f"`{' '.join(sys.argv)}` on {os.cpu_count()} cores (seed {args.seed}; matrices built in {built:.1f} s). "
        f"{windowed} parcels with a 3-hour window, {args.parcels - windowed} any time; capacity {args.capacity} "
        f"a courier; shift 09:00–19:00; VROOM exploration {args.exploration}, {args.threads} threads, timeout "
        f"{args.seconds:g} s.", "",
        "| solver | seconds | routes | unassigned | km | parcels a route | hours a route | last back | "
        "rule breaks |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(line for line, _ in rows)]))
    for (_, issues), name in zip(rows, ("vroom", "savings"), strict=True):
        for issue in issues[:10]:
            print(f"- {name} {issue}")
    failed = any(issues for _, issues in rows) or plan.unassigned or plan.seconds > 60
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
