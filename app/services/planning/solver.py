"""The dispatch solver: a `Problem` handed to VROOM (through pyvroom), its answer read back as a `Plan`.

Rules:
- Costs are the distance matrix, so VROOM minimises the distance driven; the duration matrix only schedules
  (travel times, windows, shifts). VROOM serves as many stops as it can first, then minimises cost.
- Capacities are multi-dimensional: every stop and vehicle is padded to the longest amount given. A vehicle
  with no capacity (or fewer dimensions than the stops) is unlimited in the missing dimensions, expressed as
  the total demand, so no figure overflows VROOM's integers.
- A stop's windows bound when its service starts (several may be given, in any order, even overlapping); a
  vehicle's shift bounds its departure and its return.
- `seconds` is VROOM's own timeout: it returns the best plan found by then.
- No stops or no vehicles: nothing to solve, every stop is unassigned, VROOM is not called.
"""
from __future__ import annotations

from datetime import timedelta
from functools import cache
from importlib.metadata import version
from itertools import pairwise
from time import perf_counter

from app.services.planning.problem import Plan, Problem, Route, Stop, Vehicle, Visit

PROFILE = "car"  # VROOM's matrices are per profile; every vehicle shares the one set of matrices
UINT32_MAX = 2**32 - 1  # VROOM's matrices hold unsigned 32-bit figures


@cache
def solver_name() -> str:
    """'vroom 1.15.2': pyvroom's release carries the version of the VROOM it embeds."""
    return f"vroom {version('pyvroom')}"


def solve(problem: Problem, *, seconds: float | None = None, threads: int = 2, exploration: int = 5) -> Plan:
    """Plan `problem` with VROOM: routes that serve as many stops as possible within capacities, windows and
    shifts, at the least total distance; the stops it cannot serve come back in `unassigned`.

    `exploration` is VROOM's level (1 to 5, more searches longer and better), `threads` the threads it may use,
    `seconds` an optional time limit. Raises ValueError for a problem that is not well formed (matrices not
    square, a location out of range, a window that ends before it starts).

    Measured on 2 cores (loadtests/results/dispatch-2026-12-07.md): ~100 stops, level 4 within 8 s; 500 stops,
    level 2 or 3 with a 45 s limit (level 5 is cut short there and drives 15 % more)."""
    started = perf_counter()
    check_problem(problem)
    if not problem.stops or not problem.vehicles:
        return Plan(solver=solver_name(), routes=(), unassigned=tuple(stop.key for stop in problem.stops),
                    seconds=perf_counter() - started)
    import vroom  # imported here: numpy, pandas and the solver load only for processes that plan

    dimensions = _dimensions(problem)
    instance = vroom.Input()
    instance.set_durations_matrix(PROFILE, problem.durations)
    instance.set_distances_matrix(PROFILE, problem.distances)
    instance.set_costs_matrix(PROFILE, problem.distances)
    for number, vehicle in enumerate(problem.vehicles):
        instance.add_vehicle(vroom.Vehicle(
            number, start=vehicle.start, end=vehicle.end, profile=PROFILE,
            capacity=_capacity(vehicle, problem, dimensions),
            time_window=vroom.TimeWindow(*vehicle.shift) if vehicle.shift else None))
    instance.add_job([
        vroom.Job(number + 1, location=stop.location, default_service=stop.service,
                  delivery=_padded(stop.demand, dimensions),
                  time_windows=[vroom.TimeWindow(opens, closes) for opens, closes in _merged(stop.windows)])
        for number, stop in enumerate(problem.stops)])
    timeout = timedelta(seconds=seconds) if seconds is not None else None
    solution = instance.solve(exploration_level=exploration, nb_threads=threads, timeout=timeout)
    routes = _routes(problem, solution.routes)
    served = {visit.key for route in routes for visit in route.visits}
    return Plan(solver=solver_name(), routes=routes,
                unassigned=tuple(stop.key for stop in problem.stops if stop.key not in served),
                seconds=perf_counter() - started,
                extra={"exploration": exploration, "threads": threads, "timeout": seconds})


def check_problem(problem: Problem) -> None:
    """Raise ValueError when `problem` cannot be planned as given: the matrices square and of one size, every
    location inside them, figures non-negative and within 32 bits, windows and shifts not ending before they
    start, stop keys unique. The solvers call it first, so a caller's mistake is named, not a crash inside."""
    size = len(problem.durations)
    for name, matrix in (("durations", problem.durations), ("distances", problem.distances)):
        if len(matrix) != size or any(len(row) != size for row in matrix):
            raise ValueError(f"The {name} matrix must be square, {size}×{size} like the durations.")
        if any(value < 0 or value > UINT32_MAX for row in matrix for value in row):
            raise ValueError(f"The {name} matrix holds a figure below 0 or above {UINT32_MAX}.")
    keys = [stop.key for stop in problem.stops]
    if len(set(keys)) != len(keys):
        raise ValueError("Two stops share a key.")
    vehicle_keys = [vehicle.key for vehicle in problem.vehicles]
    if len(set(vehicle_keys)) != len(vehicle_keys):
        raise ValueError("Two vehicles share a key.")
    for stop in problem.stops:
        if not 0 <= stop.location < size:
            raise ValueError(f"Stop {stop.key}: location {stop.location} is outside the matrices.")
        if stop.service < 0 or any(amount < 0 for amount in stop.demand):
            raise ValueError(f"Stop {stop.key}: service and demand cannot be negative.")
        if any(opens > closes or opens < 0 for opens, closes in stop.windows):
            raise ValueError(f"Stop {stop.key}: a window ends before it starts (or starts before 0).")
    for vehicle in problem.vehicles:
        if not (0 <= vehicle.start < size and 0 <= vehicle.end < size):
            raise ValueError(f"Vehicle {vehicle.key}: start or end is outside the matrices.")
        if any(amount < 0 for amount in vehicle.capacity):
            raise ValueError(f"Vehicle {vehicle.key}: capacity cannot be negative.")
        if vehicle.shift and not 0 <= vehicle.shift[0] <= vehicle.shift[1]:
            raise ValueError(f"Vehicle {vehicle.key}: the shift ends before it starts (or starts before 0).")


def _merged(windows: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """The windows sorted, overlapping or touching ones joined: VROOM refuses windows that overlap."""
    merged: list[tuple[int, int]] = []
    for opens, closes in sorted(windows):
        if merged and opens <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _dimensions(problem: Problem) -> int:
    return max([len(stop.demand) for stop in problem.stops] + [len(v.capacity) for v in problem.vehicles])


def _padded(amounts: tuple[int, ...], dimensions: int) -> list[int]:
    return list(amounts) + [0] * (dimensions - len(amounts))


def _capacity(vehicle: Vehicle, problem: Problem, dimensions: int) -> list[int]:
    """The vehicle's capacity in every dimension; a dimension it does not state holds everything."""
    totals = [sum(_padded(stop.demand, dimensions)[d] for stop in problem.stops) for d in range(dimensions)]
    return [vehicle.capacity[d] if d < len(vehicle.capacity) else totals[d] for d in range(dimensions)]


def _routes(problem: Problem, frame) -> tuple[Route, ...]:
    """VROOM's steps (one row each: start, jobs, end, grouped by vehicle) as our routes, in vehicle order."""
    steps: dict[int, list] = {}
    for row in frame.itertuples(index=False):
        steps.setdefault(int(row.vehicle_id), []).append(row)
    routes = []
    for number in sorted(steps):
        vehicle = problem.vehicles[number]
        visits, locations, departure, arrival = [], [], 0, 0
        for row in steps[number]:
            if row.type == "start":
                departure = int(row.arrival)
            elif row.type == "end":
                arrival = int(row.arrival)
            elif row.type == "job":
                stop: Stop = problem.stops[int(row.id) - 1]
                # Service starts after any wait for the window (VROOM's setup time is not used).
                visits.append(Visit(key=stop.key, arrival=int(row.arrival),
                                    start=int(row.arrival) + int(row.waiting_time)))
                locations.append(stop.location)
        if not visits:
            continue
        routes.append(Route(vehicle=vehicle.key, visits=tuple(visits),
                            distance=route_distance(problem, vehicle, locations),
                            duration=arrival - departure, departure=departure, arrival=arrival))
    return tuple(routes)


def route_distance(problem: Problem, vehicle: Vehicle, locations: list[int]) -> int:
    """Start → each location in order → end, from the distance matrix."""
    path = [vehicle.start, *locations, vehicle.end]
    return sum(problem.distances[a][b] for a, b in pairwise(path))
