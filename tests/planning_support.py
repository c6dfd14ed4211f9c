"""STAND-IN, TO BE REMOVED AT MERGE: the solver and the savings baseline the dispatch tests plan with until the
real ones (app.services.planning.solver.solve, VROOM; app.services.planning.savings.savings, Clarke-Wright)
are on this branch. At the merge the tests' one import (in tests/dispatch_support.py) switches:

    from tests.planning_support import savings, solve
  becomes
    from app.services.planning.savings import savings
    from app.services.planning.solver import solve

and this file goes. Both functions here are the same greedy nearest-neighbour: each vehicle in turn takes the
nearest stop it can still serve within its load, the stop's window and its own shift (back at its end in time),
until none is left it can take. Correct (every rule kept), not good: enough to test what dispatch does with a plan.
"""
from __future__ import annotations

from time import perf_counter

from app.services.planning.problem import Plan, Problem, Route, Visit


def solve(problem: Problem, *, seconds: float | None = None, threads: int = 2, exploration: int = 5) -> Plan:
    started = perf_counter()
    left = list(range(len(problem.stops)))
    routes = []
    dimensions = max([len(s.demand) for s in problem.stops] + [len(v.capacity) for v in problem.vehicles] + [0])
    for vehicle in problem.vehicles:
        leaves, back_by = vehicle.shift or (0, 10 ** 12)
        now, here, load = leaves, vehicle.start, [0] * dimensions
        capacity = list(vehicle.capacity) + [10 ** 12] * (dimensions - len(vehicle.capacity))
        visits, distance = [], 0
        while True:
            best = None
            for index in left:
                stop = problem.stops[index]
                demand = list(stop.demand) + [0] * (dimensions - len(stop.demand))
                if any(load[d] + demand[d] > capacity[d] for d in range(dimensions)):
                    continue
                arrival = now + problem.durations[here][stop.location]
                starts = [max(arrival, opens) for opens, closes in stop.windows if closes >= arrival] \
                    if stop.windows else [arrival]
                if not starts:
                    continue
                start = min(starts)
                if start + stop.service + problem.durations[stop.location][vehicle.end] > back_by:
                    continue
                if best is None or problem.durations[here][stop.location] < best[0]:
                    best = (problem.durations[here][stop.location], index, arrival, start, demand)
            if best is None:
                break
            _, index, arrival, start, demand = best
            stop = problem.stops[index]
            visits.append(Visit(key=stop.key, arrival=arrival, start=start))
            distance += problem.distances[here][stop.location]
            load = [load[d] + demand[d] for d in range(dimensions)]
            now, here = start + stop.service, stop.location
            left.remove(index)
        if visits:
            distance += problem.distances[here][vehicle.end]
            back = now + problem.durations[here][vehicle.end]
            routes.append(Route(vehicle=vehicle.key, visits=tuple(visits), distance=distance,
                                duration=back - leaves, departure=leaves, arrival=back))
    return Plan(solver="nearest-neighbour stand-in", routes=tuple(routes),
                unassigned=tuple(problem.stops[index].key for index in left), seconds=perf_counter() - started)


def savings(problem: Problem) -> Plan:
    return solve(problem)
