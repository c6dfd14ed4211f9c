"""Solomon's VRPTW instances (100 customers, one depot, C1 … RC2): read, planned, and judged in exact figures.

Rules:
- An instance is read with vrplib (Solomon's text format). Customer numbers are the stop keys, the depot is
  location 0, every vehicle (the instance's count, its capacity) leaves and returns there within the depot's
  window.
- The solvers work in integers, so the instance is scaled by SCALE (×1000): windows and service times are
  multiplied exactly (Solomon's figures are integers), a travel time is the Euclidean distance scaled and
  rounded UP (computed exactly with integer square roots), a distance is scaled and rounded to the nearest.
  Travel times never shorter than the real ones: a plan feasible in integers is feasible in exact arithmetic.
- What a plan is worth is judged in exact (unrounded, float) Euclidean figures: `exact_distance` and
  `exact_issues` (windows, the depot's due time, capacity, each customer served once), as the literature
  does, to compare with its best-known solutions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from app.errors import ValidationError
from app.services.planning.problem import Plan, Problem, Stop, Vehicle

SCALE = 1000
# What the benchmark measured (loadtests/results/dispatch-2026-12-07.md): on 2 cores, exploration 4 stopped at
# 8 s plans every instance in under 10 s, closer to the best-known distances than level 5 cut short at 8 s.
EXPLORATION = 4
SECONDS = 8.0
TOLERANCE = 1e-6  # float rounding in the exact check, far below any figure of the instances


class SolomonFormatError(ValidationError):
    """The file is not a Solomon instance (or cannot be read)."""

    @classmethod
    def about(cls, message: str) -> SolomonFormatError:
        return cls(message, {"file": message})


@dataclass(frozen=True)
class Instance:
    """A Solomon instance as read: row 0 is the depot, rows 1… the customers."""

    name: str
    vehicles: int
    capacity: int
    numbers: tuple[int, ...]  # customer number per row (the depot's, 0, first)
    coords: tuple[tuple[int, int], ...]
    demands: tuple[int, ...]
    windows: tuple[tuple[int, int], ...]  # (ready time, due date): service starts within
    services: tuple[int, ...]

    def distance(self, a: int, b: int) -> float:
        (xa, ya), (xb, yb) = self.coords[a], self.coords[b]
        return math.hypot(xa - xb, ya - yb)


def read_instance(path: str | Path) -> Instance:
    """Read a Solomon instance; SolomonFormatError when the file is unreadable or not in Solomon's format."""
    import vrplib  # imported here: numpy loads only for processes that plan

    try:
        data = vrplib.read_instance(path, instance_format="solomon", compute_edge_weights=False)
        rows = len(data["demand"])
        instance = Instance(
            name=str(data["name"]), vehicles=int(data["vehicles"]), capacity=int(data["capacity"]),
            numbers=_numbers(path, rows),
            coords=tuple((int(x), int(y)) for x, y in data["node_coord"]),
            demands=tuple(int(d) for d in data["demand"]),
            windows=tuple((int(a), int(b)) for a, b in data["time_window"]),
            services=tuple(int(s) for s in data["service_time"]))
    except OSError as exc:
        raise SolomonFormatError.about(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except (RuntimeError, ValueError, IndexError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise SolomonFormatError.about(f"{path} is not a Solomon instance (VEHICLE and CUSTOMER sections, one row "
                                       f"per customer with 7 integer columns).") from exc
    _check(instance, path)
    return instance


def _numbers(path: str | Path, rows: int) -> tuple[int, ...]:
    """The customer numbers of the data rows (vrplib keeps the rows in file order, not their numbers)."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return tuple(int(fields[0]) for fields in lines[-rows:])


def _check(instance: Instance, path: str | Path) -> None:
    problems = []
    if instance.numbers[0] != 0:
        problems.append("its first row is not the depot, number 0")
    if len(set(instance.numbers)) != len(instance.numbers):
        problems.append("two rows share a customer number")
    if instance.vehicles < 1 or instance.capacity < 0:
        problems.append("its vehicle count or capacity is not positive")
    if any(value < 0 for value in (*instance.demands, *instance.services, *instance.numbers)) \
            or any(ready < 0 or due < ready for ready, due in instance.windows):
        problems.append("a demand, service time or window is negative or ends before it starts")
    if problems:
        raise SolomonFormatError.about(f"{path} is not a usable Solomon instance: {'; '.join(problems)}.")


def to_problem(instance: Instance) -> Problem:
    """The instance in the solvers' integer units (see the module's rules)."""
    size = len(instance.coords)
    durations = [[0] * size for _ in range(size)]
    distances = [[0] * size for _ in range(size)]
    for a in range(size):
        for b in range(size):
            (xa, ya), (xb, yb) = instance.coords[a], instance.coords[b]
            squared = ((xa - xb) ** 2 + (ya - yb) ** 2) * SCALE * SCALE
            root = math.isqrt(squared)  # floor of the scaled distance, exactly
            durations[a][b] = root if root * root == squared else root + 1
            distances[a][b] = root + (1 if squared - root * root > root else 0)  # nearest: (root+½)² = root²+root+¼
    stops = tuple(
        Stop(key=str(instance.numbers[row]), location=row, service=instance.services[row] * SCALE,
             demand=(instance.demands[row],),
             windows=((instance.windows[row][0] * SCALE, instance.windows[row][1] * SCALE),))
        for row in range(1, size))
    shift = (instance.windows[0][0] * SCALE, instance.windows[0][1] * SCALE)
    vehicles = tuple(Vehicle(key=f"v{number}", start=0, end=0, capacity=(instance.capacity,), shift=shift)
                     for number in range(1, instance.vehicles + 1))
    return Problem(durations=durations, distances=distances, stops=stops, vehicles=vehicles)


def customer_routes(plan: Plan) -> list[list[int]]:
    """The plan's routes as lists of Solomon customer numbers."""
    return [[int(visit.key) for visit in route.visits] for route in plan.routes]


def exact_distance(instance: Instance, routes: list[list[int]]) -> float:
    """The total Euclidean length, unrounded, of routes of customer numbers (depot → customers → depot)."""
    row = {number: index for index, number in enumerate(instance.numbers)}
    total = 0.0
    for route in routes:
        path = [0, *(row[number] for number in route), 0]
        total += sum(instance.distance(a, b) for a, b in pairwise(path))
    return total


def exact_issues(instance: Instance, routes: list[list[int]]) -> list[str]:
    """Whatever breaks the instance in exact arithmetic: a service starting after its due date, a return to
    the depot after its due date, a load over capacity, more routes than vehicles, a customer served twice or
    not at all. Travel time is the unrounded distance; a vehicle leaves at the depot's ready time."""
    issues = []
    row = {number: index for index, number in enumerate(instance.numbers)}
    ready0, due0 = instance.windows[0]
    if len(routes) > instance.vehicles:
        issues.append(f"{len(routes)} routes for {instance.vehicles} vehicles")
    served: dict[int, int] = {}
    for number, route in enumerate(routes, start=1):
        here, time, load = 0, float(ready0), 0
        for customer in route:
            served[customer] = served.get(customer, 0) + 1
            if customer not in row or row[customer] == 0:
                issues.append(f"route {number}: {customer} is not a customer")
                continue
            there = row[customer]
            time = max(time + instance.distance(here, there), instance.windows[there][0])
            if time > instance.windows[there][1] + TOLERANCE:
                issues.append(f"route {number}: customer {customer} served at {time:.4f}, "
                              f"due {instance.windows[there][1]}")
            time += instance.services[there]
            load += instance.demands[there]
            here = there
        back = time + instance.distance(here, 0)
        if back > due0 + TOLERANCE:
            issues.append(f"route {number}: back at the depot at {back:.4f}, due {due0}")
        if load > instance.capacity:
            issues.append(f"route {number}: load {load} over the capacity {instance.capacity}")
    for customer in instance.numbers[1:]:
        if served.get(customer, 0) != 1:
            issues.append(f"customer {customer} served {served.get(customer, 0)} times")
    return issues


def solve_instance(path: str | Path, *, seconds: float | None = SECONDS, exploration: int = EXPLORATION,
                   threads: int = 2) -> dict:
    """Solve a Solomon instance with VROOM and with the savings heuristic; the VROOM plan in Solomon's terms:
    {"instance", "vehicles" (routes used), "distance" (exact), "routes" (customer numbers), "seconds",
    "unassigned", "savings_distance" (the savings plan's exact distance)}. SolomonFormatError for a bad file."""
    from app.services.planning.savings import savings
    from app.services.planning.solver import solve

    instance = read_instance(path)
    problem = to_problem(instance)
    plan = solve(problem, seconds=seconds, exploration=exploration, threads=threads)
    baseline = savings(problem)
    routes = customer_routes(plan)
    return {"instance": instance.name, "vehicles": len(routes),
            "distance": round(exact_distance(instance, routes), 2), "routes": routes,
            "seconds": round(plan.seconds, 2), "unassigned": [int(key) for key in plan.unassigned],
            "savings_distance": round(exact_distance(instance, customer_routes(baseline)), 2)}
