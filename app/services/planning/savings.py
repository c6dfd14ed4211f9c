"""The Clarke-Wright savings heuristic (parallel version): our baseline, to measure what VROOM adds.

Rules:
- One depot: routes are built for the first vehicle (its start, end, shift and capacity). Each stop that this
  vehicle can serve on its own starts on a route of its own; a stop it cannot (demand over capacity, window
  unreachable within the shift) is unassigned.
- The saving of serving j right after i is d(i, end) + d(start, j) - d(i, j). Pairs are taken best first; the
  route ending at i and the route starting at j merge when the merged load fits and the merged schedule holds.
  The schedule check is O(1): each route keeps its earliest finish at its last stop (leaving when the shift
  opens) and the latest arrival at its first stop from which the rest still holds (windows and the shift's
  end), because arriving earlier never makes anything later.
- Merges that save nothing (or lengthen the distance) are taken only while there are more routes than
  vehicles, to serve every stop the fleet can.
- Routes go to vehicles largest first, each to the first unused vehicle that can drive it (its own start, end,
  shift and capacity, checked again). Routes left without a vehicle leave their stops unassigned. When all
  vehicles share the first one's depot, shift and capacity (the normal case), every route fits the first
  unused vehicle.
- Cost: building and sorting the n² savings, O(n² log n); each merge rewrites one route, O(n).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from time import perf_counter

from app.services.planning.feasibility import latest_arrival, service_start
from app.services.planning.problem import Plan, Problem, Route, Stop, Vehicle, Visit
from app.services.planning.solver import check_problem, route_distance

NAME = "savings"


@dataclass
class _Chain:
    """A route under construction: its stops (indexes into problem.stops) and what a merge check needs."""

    stops: list[int]
    load: list[int]
    finish: int  # earliest end of service at the last stop
    latest: int | float  # latest arrival at the first stop that keeps the rest feasible


def savings(problem: Problem) -> Plan:
    """Plan `problem` with the parallel Clarke-Wright savings heuristic (see the module's rules)."""
    started = perf_counter()
    check_problem(problem)
    if not problem.stops or not problem.vehicles:
        return Plan(solver=NAME, routes=(), unassigned=tuple(stop.key for stop in problem.stops),
                    seconds=perf_counter() - started)
    depot = problem.vehicles[0]
    dimensions = max([len(stop.demand) for stop in problem.stops] + [len(v.capacity) for v in problem.vehicles])
    chains: dict[int, _Chain] = {}  # keyed by the chain's first stop
    chain_of: dict[int, int] = {}  # stop → the first stop of its chain
    for index in range(len(problem.stops)):
        chain = _chain(problem, depot, [index], dimensions)
        if chain is not None:
            chains[index] = chain
            chain_of[index] = index
    distances, durations, stops = problem.distances, problem.durations, problem.stops
    start, end = depot.start, depot.end
    pairs = sorted(
        ((distances[stops[i].location][end] + distances[start][stops[j].location]
          - distances[stops[i].location][stops[j].location], i, j)
         for i in chain_of for j in chain_of if i != j),
        key=lambda pair: (-pair[0], pair[1], pair[2]))
    fleet = len(problem.vehicles)
    for saving, i, j in pairs:
        if saving <= 0 and len(chains) <= fleet:
            break
        first_i, first_j = chain_of[i], chain_of[j]
        left, right = chains[first_i], chains[first_j]
        if first_i == first_j or left.stops[-1] != i or first_j != j:
            continue  # i must end one route and j start another
        load = [a + b for a, b in zip(left.load, right.load, strict=True)]
        if not _fits(load, depot.capacity):
            continue
        if left.finish + durations[stops[i].location][stops[j].location] > right.latest:
            continue
        merged = _chain(problem, depot, left.stops + right.stops, dimensions)
        if merged is None:  # cannot happen after the O(1) check; kept so a plan is never infeasible
            continue
        del chains[first_j]
        chains[first_i] = merged
        for index in right.stops:
            chain_of[index] = first_i
    return _plan(problem, list(chains.values()), set(chain_of), dimensions, started)


def _fits(load: list[int], capacity: tuple[int, ...]) -> bool:
    return all(amount <= capacity[d] for d, amount in enumerate(load) if d < len(capacity))


def _chain(problem: Problem, vehicle: Vehicle, indexes: list[int], dimensions: int) -> _Chain | None:
    """The chain of these stops for `vehicle`, or None when its load or schedule does not hold."""
    stops = [problem.stops[index] for index in indexes]
    load = [sum(stop.demand[d] for stop in stops if d < len(stop.demand)) for d in range(dimensions)]
    if not _fits(load, vehicle.capacity):
        return None
    schedule = _schedule(problem, vehicle, stops)
    if schedule is None:
        return None
    finish = schedule[-1][1] + stops[-1].service
    durations = problem.durations
    shift_end = vehicle.shift[1] if vehicle.shift else float("inf")
    # Backwards: the latest arrival at each stop that still gets the vehicle home before the shift closes.
    latest: int | float | None = latest_arrival(
        shift_end - durations[stops[-1].location][vehicle.end] - stops[-1].service, stops[-1].windows)
    for after, before in pairwise(reversed(stops)):
        if latest is None:
            return None
        latest = latest_arrival(latest - durations[before.location][after.location] - before.service,
                                before.windows)
    if latest is None:
        return None
    return _Chain(stops=indexes, load=load, finish=finish, latest=latest)


def _schedule(problem: Problem, vehicle: Vehicle, stops: list[Stop]) -> list[tuple[int, int]] | None:
    """(arrival, service start) at each stop, leaving when the shift opens; None when a window is missed or
    the vehicle is back after its shift."""
    here, ready = vehicle.start, vehicle.shift[0] if vehicle.shift else 0
    times = []
    for stop in stops:
        arrival = ready + problem.durations[here][stop.location]
        start = service_start(arrival, stop.windows)
        if start is None:
            return None
        times.append((arrival, start))
        here, ready = stop.location, start + stop.service
    if vehicle.shift and ready + problem.durations[here][vehicle.end] > vehicle.shift[1]:
        return None
    return times


def _plan(problem: Problem, chains: list[_Chain], served: set[int], dimensions: int, started: float) -> Plan:
    """Routes to vehicles, largest first, each to the first unused vehicle that can drive it."""
    free = list(problem.vehicles)
    routes = []
    for chain in sorted(chains, key=lambda chain: (-len(chain.stops), chain.stops[0])):
        for vehicle in free:
            route = _route(problem, vehicle, chain, dimensions)
            if route is not None:
                free.remove(vehicle)
                routes.append(route)
                break
        else:
            served -= set(chain.stops)
    order = {vehicle.key: number for number, vehicle in enumerate(problem.vehicles)}
    routes.sort(key=lambda route: order[route.vehicle])
    return Plan(solver=NAME, routes=tuple(routes),
                unassigned=tuple(stop.key for index, stop in enumerate(problem.stops) if index not in served),
                seconds=perf_counter() - started)


def _route(problem: Problem, vehicle: Vehicle, chain: _Chain, dimensions: int) -> Route | None:
    if _chain(problem, vehicle, chain.stops, dimensions) is None:
        return None
    stops = [problem.stops[index] for index in chain.stops]
    times = _schedule(problem, vehicle, stops)
    assert times is not None  # _chain checked it
    # Leave as late as the first service allows: the same schedule, no wait at the first stop.
    first_leg = problem.durations[vehicle.start][stops[0].location]
    opens = vehicle.shift[0] if vehicle.shift else 0
    departure = max(opens, times[0][1] - first_leg)
    times[0] = (max(times[0][0], departure + first_leg), times[0][1])
    arrival = times[-1][1] + stops[-1].service + problem.durations[stops[-1].location][vehicle.end]
    visits = tuple(Visit(key=stop.key, arrival=a, start=s) for stop, (a, s) in zip(stops, times, strict=True))
    return Route(vehicle=vehicle.key, visits=visits,
                 distance=route_distance(problem, vehicle, [stop.location for stop in stops]),
                 duration=arrival - departure, departure=departure, arrival=arrival)
