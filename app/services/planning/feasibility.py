"""Is a plan possible? The checker the tests and the benchmark hold every solver's plan to, and the schedule
rules the savings heuristic builds with.

The rules, in the problem's integer units:
- every stop is either on exactly one route or unassigned, never both, never twice, never missing; a route
  names a vehicle of the problem, at most one route per vehicle;
- a route's load (the sum of its stops' demands, per dimension) is within its vehicle's capacity; a dimension
  the vehicle does not state is unlimited;
- the schedule holds: the vehicle leaves `start` no earlier than its shift opens, reaches each stop no earlier
  than the travel time allows, starts service no earlier than it arrives and inside one of the stop's windows,
  and is back at `end` (travel time after the last service) no later than its shift closes;
- the route's distance is the distance matrix's along start → stops → end.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

from app.services.planning.problem import Plan, Problem, Route, Stop, Vehicle

Windows = Sequence[tuple[int, int]]


def service_start(arrival: int, windows: Windows) -> int | None:
    """When service starts for a vehicle arriving at `arrival`: at once inside a window, else at the next
    window's opening; None when every window has closed. No windows: at once."""
    if not windows:
        return arrival
    starts = [max(arrival, opens) for opens, closes in windows if closes >= arrival]
    return min(starts) if starts else None


def latest_arrival(latest_start: int | float, windows: Windows) -> int | float | None:
    """The latest arrival from which service starts no later than `latest_start` (the schedule after a stop is
    monotone: arriving earlier never makes anything later). None when no window opens by then."""
    if not windows:
        return latest_start
    candidates = [min(closes, latest_start) for opens, closes in windows if opens <= latest_start]
    return max(candidates) if candidates else None


def check_plan(problem: Problem, plan: Plan) -> list[str]:
    """Every way `plan` breaks `problem`'s rules (see the module's docstring), one line each, prefixed with its
    kind: 'capacity', 'window', 'shift', 'schedule', 'distance', 'vehicle', 'duplicate', 'missing', 'unknown'.
    An empty list: the plan is feasible."""
    issues: list[str] = []
    stops = {stop.key: stop for stop in problem.stops}
    vehicles = {vehicle.key: vehicle for vehicle in problem.vehicles}
    seen: Counter[str] = Counter()
    vehicles_used: Counter[str] = Counter()
    for route in plan.routes:
        vehicles_used[route.vehicle] += 1
        vehicle = vehicles.get(route.vehicle)
        known = []
        for visit in route.visits:
            seen[visit.key] += 1
            if visit.key in stops:
                known.append(stops[visit.key])
            else:
                issues.append(f"unknown: route of {route.vehicle} visits stop {visit.key}, not in the problem")
        if vehicle is None:
            issues.append(f"vehicle: route of {route.vehicle}, a vehicle not in the problem")
            continue
        issues += _capacity_issues(route.vehicle, vehicle.capacity, known)
        issues += _schedule_issues(problem, route, vehicle, stops)
        path = [vehicle.start, *(stop.location for stop in known), vehicle.end]
        distance = sum(problem.distances[a][b] for a, b in pairwise(path))
        if distance != route.distance:
            issues.append(f"distance: route of {route.vehicle} says {route.distance}, the matrix {distance}")
    for key, count in vehicles_used.items():
        if count > 1:
            issues.append(f"vehicle: {key} has {count} routes")
    for key in plan.unassigned:
        seen[key] += 1
        if key not in stops:
            issues.append(f"unknown: unassigned stop {key} is not in the problem")
    for key, count in seen.items():
        if count > 1 and key in stops:
            issues.append(f"duplicate: stop {key} appears {count} times")
    for key in stops:
        if key not in seen:
            issues.append(f"missing: stop {key} is neither on a route nor unassigned")
    return issues


def _capacity_issues(vehicle_key: str, capacity: tuple[int, ...], stops: list[Stop]) -> list[str]:
    issues = []
    for dimension, limit in enumerate(capacity):
        load = sum(stop.demand[dimension] for stop in stops if dimension < len(stop.demand))
        if load > limit:
            issues.append(f"capacity: route of {vehicle_key} carries {load} in dimension {dimension}, "
                          f"its capacity is {limit}")
    return issues


def _schedule_issues(problem: Problem, route: Route, vehicle: Vehicle, stops: dict[str, Stop]) -> list[str]:
    issues = []
    name = f"route of {route.vehicle}"
    if vehicle.shift and route.departure < vehicle.shift[0]:
        issues.append(f"shift: {name} leaves at {route.departure}, before its shift opens at {vehicle.shift[0]}")
    here, ready = vehicle.start, route.departure
    for visit in route.visits:
        stop = stops.get(visit.key)
        if stop is None:
            continue
        earliest = ready + problem.durations[here][stop.location]
        if visit.arrival < earliest:
            issues.append(f"schedule: {name} reaches {visit.key} at {visit.arrival}, {earliest} at the earliest")
        if visit.start < visit.arrival:
            issues.append(f"schedule: {name} serves {visit.key} at {visit.start}, before arriving at "
                          f"{visit.arrival}")
        if stop.windows and not any(opens <= visit.start <= closes for opens, closes in stop.windows):
            issues.append(f"window: {name} serves {visit.key} at {visit.start}, outside {list(stop.windows)}")
        here, ready = stop.location, max(visit.start, earliest) + stop.service
    back = ready + problem.durations[here][vehicle.end]
    if route.arrival < back:
        issues.append(f"schedule: {name} is back at {route.arrival}, {back} at the earliest")
    if vehicle.shift and max(route.arrival, back) > vehicle.shift[1]:
        issues.append(f"shift: {name} is back at {max(route.arrival, back)}, after its shift closes at "
                      f"{vehicle.shift[1]}")
    return issues
