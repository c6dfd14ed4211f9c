"""The dispatch solver (VROOM), the savings baseline, the plan checker, Solomon instances and `flask dispatch
solve`. No database: plain problems, and one app whose database is never reached."""
from __future__ import annotations

import dataclasses
import itertools
import json
import random
from pathlib import Path

import pytest

from app.services.planning.feasibility import check_plan
from app.services.planning.problem import Plan, Problem, Route, Stop, Vehicle, Visit
from app.services.planning.savings import savings
from app.services.planning.solomon import (
    SCALE,
    customer_routes,
    exact_distance,
    exact_issues,
    read_instance,
    to_problem,
)
from app.services.planning.solver import check_problem, solve

TINY = Path(__file__).parent / "data" / "solomon_tiny.txt"


def grid_problem(stops: list[Stop], vehicles: list[Vehicle], points: list[tuple[int, int]]) -> Problem:
    """Locations on a grid: distance = Manhattan metres, travel time = the same in seconds."""
    matrix = [[abs(ax - bx) + abs(ay - by) for bx, by in points] for ax, ay in points]
    return Problem(durations=matrix, distances=[row[:] for row in matrix], stops=tuple(stops),
                   vehicles=tuple(vehicles))


def random_problem(seed: int, count: int = 30, vehicles: int = 6) -> Problem:
    """A depot at the centre of a 1,000 × 1,000 grid, stops with demands 1–4 and, for half, a window."""
    rng = random.Random(seed)
    points = [(500, 500)] + [(rng.randrange(1000), rng.randrange(1000)) for _ in range(count)]
    stops = []
    for index in range(1, count + 1):
        opens = rng.randrange(0, 3000)
        windows = ((opens, opens + 1200),) if index % 2 else ()
        stops.append(Stop(key=f"s{index}", location=index, service=60, demand=(rng.randint(1, 4),),
                          windows=windows))
    fleet = [Vehicle(key=f"v{n}", start=0, end=0, capacity=(15,), shift=(0, 6000)) for n in range(vehicles)]
    return grid_problem(stops, fleet, points)


# --- VROOM -------------------------------------------------------------------------------------------------------

def test_vroom_respects_capacity_windows_and_shift():
    problem = random_problem(seed=11)
    plan = solve(problem, seconds=5)
    assert plan.solver.startswith("vroom ")
    assert check_plan(problem, plan) == []
    assert plan.unassigned == ()
    total = sum(stop.demand[0] for stop in problem.stops)
    assert len(plan.routes) >= -(-total // 15)  # the capacity binds: at least this many routes
    assert plan.distance == sum(route.distance for route in plan.routes) > 0


def test_vroom_waits_for_a_window_and_reports_arrival_and_service_start():
    points = [(0, 0), (100, 0), (200, 0)]
    stops = [Stop("early", 1, service=30), Stop("late", 2, service=30, windows=((1000, 1100),))]
    problem = grid_problem(stops, [Vehicle("v", 0, 0, shift=(0, 5000))], points)
    plan = solve(problem)
    assert check_plan(problem, plan) == []
    visits = {visit.key: visit for visit in plan.routes[0].visits}
    assert 1000 <= visits["late"].start <= 1100 and visits["late"].arrival <= visits["late"].start
    route = plan.routes[0]
    assert route.arrival >= visits["late"].start + 30 + 200 and route.duration == route.arrival - route.departure


def test_vroom_takes_several_windows_in_any_order_even_overlapping():
    points = [(0, 0), (100, 0), (200, 0)]
    stops = [Stop("two windows", 1, windows=((5000, 6000), (50, 60), (55, 80))),
             Stop("one", 2, windows=((300, 400),))]
    problem = grid_problem(stops, [Vehicle("v", 0, 0, shift=(0, 10000))], points)
    plan = solve(problem)
    assert check_plan(problem, plan) == [] and plan.unassigned == ()
    start = {visit.key: visit for visit in plan.routes[0].visits}["two windows"].start
    assert 50 <= start <= 80 or 5000 <= start <= 6000


def test_vroom_leaves_out_what_no_vehicle_can_do():
    points = [(0, 0), (100, 0), (5000, 0), (0, 100), (50, 50)]
    stops = [Stop("fine", 1, demand=(5,)),
             Stop("too far for its window", 2, windows=((0, 1000),)),
             Stop("too heavy", 3, demand=(11,)),
             Stop("after the shift", 4, windows=((9000, 9500),))]
    problem = grid_problem(stops, [Vehicle("v", 0, 0, capacity=(10,), shift=(0, 8000))], points)
    for plan in (solve(problem), savings(problem)):
        assert check_plan(problem, plan) == []
        assert set(plan.unassigned) == {"too far for its window", "too heavy", "after the shift"}
        assert [visit.key for visit in plan.routes[0].visits] == ["fine"]


def test_vroom_shift_end_binds():
    """Two stops 1,000 s out in opposite directions: one courier cannot do both before its shift ends."""
    points = [(0, 0), (1000, 0), (-1000, 0)]
    stops = [Stop("east", 1), Stop("west", 2)]
    one = grid_problem(stops, [Vehicle("v1", 0, 0, shift=(0, 3000))], points)
    plan = solve(one)
    assert check_plan(one, plan) == [] and len(plan.unassigned) == 1
    two = dataclasses.replace(one, vehicles=(Vehicle("v1", 0, 0, shift=(0, 3000)),
                                             Vehicle("v2", 0, 0, shift=(0, 3000))))
    plan = solve(two)
    assert check_plan(two, plan) == [] and plan.unassigned == () and len(plan.routes) == 2


@pytest.mark.parametrize("solver", [solve, savings])
def test_nothing_to_plan_without_stops_or_vehicles(solver):
    problem = random_problem(seed=1, count=3)
    no_vehicles = solver(dataclasses.replace(problem, vehicles=()))
    assert no_vehicles.routes == () and no_vehicles.unassigned == ("s1", "s2", "s3")
    no_stops = solver(dataclasses.replace(problem, stops=()))
    assert no_stops.routes == () and no_stops.unassigned == ()


def test_a_malformed_problem_is_named_not_crashed_on():
    problem = random_problem(seed=1, count=3)
    with pytest.raises(ValueError, match="square"):
        check_problem(dataclasses.replace(problem, distances=problem.distances[:-1]))
    with pytest.raises(ValueError, match="outside the matrices"):
        solve(dataclasses.replace(problem, stops=(Stop("x", 99),)))
    with pytest.raises(ValueError, match="window ends before"):
        savings(dataclasses.replace(problem, stops=(Stop("x", 1, windows=((10, 5),)),)))


# --- savings -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [3, 5])
def test_savings_is_feasible_and_not_better_than_vroom(seed):
    problem = random_problem(seed=seed, count=40, vehicles=8)
    baseline = savings(problem)
    plan = solve(problem, seconds=5)
    assert check_plan(problem, baseline) == [] and check_plan(problem, plan) == []
    assert baseline.solver == "savings" and plan.unassigned == ()
    assert len(baseline.unassigned) > 0 or plan.distance <= baseline.distance


def test_savings_merges_routes_on_a_line():
    """Stops strung along one road, out and back: one route of 600 m, where three would drive 1,200."""
    points = [(0, 0), (100, 0), (200, 0), (300, 0)]
    stops = [Stop("c", 3), Stop("a", 1), Stop("b", 2)]
    problem = grid_problem(stops, [Vehicle("v1", 0, 0), Vehicle("v2", 0, 0)], points)
    plan = savings(problem)
    assert check_plan(problem, plan) == []
    assert len(plan.routes) == 1 and plan.distance == 600


def test_savings_leaves_out_stops_of_routes_beyond_the_fleet():
    """Three stops whose windows forbid sharing a route, one vehicle: two are unassigned."""
    points = [(0, 0), (1000, 0), (-1000, 0), (0, 1000)]
    stops = [Stop(name, index, windows=((1000, 1000),)) for index, name in enumerate("xyz", start=1)]
    problem = grid_problem(stops, [Vehicle("v1", 0, 0)], points)
    plan = savings(problem)
    assert check_plan(problem, plan) == [] and len(plan.routes) == 1 and len(plan.unassigned) == 2


# --- the checker -------------------------------------------------------------------------------------------------

@pytest.fixture
def checked():
    points = [(0, 0), (100, 0), (200, 0)]
    stops = [Stop("a", 1, service=10, demand=(3,), windows=((100, 200),)), Stop("b", 2, service=10, demand=(3,))]
    problem = grid_problem(stops, [Vehicle("v1", 0, 0, capacity=(6,), shift=(0, 1000)), Vehicle("v2", 0, 0)],
                           points)
    route = Route(vehicle="v1", visits=(Visit("a", 100, 100), Visit("b", 210, 210)), distance=400, duration=420,
                  departure=0, arrival=420)
    plan = Plan(solver="hand", routes=(route,))
    assert check_plan(problem, plan) == []
    return problem, plan, route


@pytest.mark.parametrize(("kind", "change"), [
    ("capacity", lambda problem, plan, route: (
        dataclasses.replace(problem, vehicles=(Vehicle("v1", 0, 0, capacity=(5,), shift=(0, 1000)),)), plan)),
    ("window", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(dataclasses.replace(
        route, visits=(Visit("a", 100, 250), Visit("b", 360, 360)), arrival=570, duration=570),)))),
    ("shift", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(dataclasses.replace(
        route, arrival=1200, duration=1200),)))),
    ("shift", lambda problem, plan, route: (
        dataclasses.replace(problem, vehicles=(Vehicle("v1", 0, 0, capacity=(6,), shift=(50, 1000)),)), plan)),
    ("schedule", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(dataclasses.replace(
        route, visits=(Visit("a", 100, 100), Visit("b", 150, 150))),)))),
    ("duplicate", lambda problem, plan, route: (problem, dataclasses.replace(plan, unassigned=("b",)))),
    ("missing", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(dataclasses.replace(
        route, visits=route.visits[:1], distance=200),)))),
    ("unknown", lambda problem, plan, route: (problem, dataclasses.replace(plan, unassigned=("zz",)))),
    ("vehicle", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(route, route)))),
    ("vehicle", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(dataclasses.replace(
        route, vehicle="v9"),)))),
    ("distance", lambda problem, plan, route: (problem, dataclasses.replace(plan, routes=(dataclasses.replace(
        route, distance=399),)))),
])
def test_check_plan_names_each_broken_rule(checked, kind, change):
    problem, plan = change(*checked)
    issues = check_plan(problem, plan)
    assert issues and any(issue.startswith(f"{kind}:") for issue in issues), issues


# --- Solomon -----------------------------------------------------------------------------------------------------

def brute_force_optimum(path: Path) -> tuple[float, list[list[int]]]:
    """Every order of the customers cut into consecutive routes, judged exactly: the shortest feasible one."""
    instance = read_instance(path)
    customers = list(instance.numbers[1:])
    best: tuple[float, list[list[int]]] = (float("inf"), [])
    for order in itertools.permutations(customers):
        for cuts in itertools.product((False, True), repeat=len(order) - 1):
            routes, current = [], [order[0]]
            for customer, cut in zip(order[1:], cuts, strict=True):
                if cut:
                    routes.append(current)
                    current = []
                current.append(customer)
            routes.append(current)
            if len(routes) > instance.vehicles:
                continue
            distance = exact_distance(instance, routes)
            if distance < best[0] - 1e-9 and not exact_issues(instance, routes):
                best = (distance, routes)
    return best


def test_solomon_scaling_never_shortens_travel():
    instance = read_instance(TINY)
    problem = to_problem(instance)
    assert (instance.name, instance.vehicles, instance.capacity, len(problem.stops)) == ("TINY6", 3, 30, 6)
    for a, b in itertools.product(range(7), repeat=2):
        exact = instance.distance(a, b) * SCALE
        assert exact <= problem.durations[a][b] < exact + 1
        assert abs(problem.distances[a][b] - exact) <= 0.5
    assert problem.stops[1].windows == ((40 * SCALE, 90 * SCALE),) and problem.vehicles[0].shift == (0, 300 * SCALE)


def test_exact_issues_catch_a_late_service_overload_and_a_missing_customer():
    instance = read_instance(TINY)
    issues = exact_issues(instance, [[5, 2, 1], [3, 6, 4]])
    assert issues == []
    assert any("customer 5 served at" in issue for issue in exact_issues(instance, [[2, 1, 5], [3, 6, 4]]))
    heavy = exact_issues(instance, [[5, 2, 1, 3], [6, 4]])
    assert any("over the capacity" in issue for issue in heavy)
    assert any("customer 4 served 0 times" in issue for issue in exact_issues(instance, [[5, 2, 1], [3, 6]]))


@pytest.fixture(scope="module")
def cli_app():
    """An app whose database cannot be reached: `flask dispatch solve` must not need it."""
    from app import create_app
    from app.config import TestingConfig

    return create_app(TestingConfig("postgresql://nobody@127.0.0.1:1/unreachable"))


def test_cli_finds_the_proven_optimum_of_a_tiny_instance(cli_app):
    optimum, _ = brute_force_optimum(TINY)
    result = cli_app.test_cli_runner().invoke(args=["dispatch", "solve", str(TINY), "--seconds", "5"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output.strip().splitlines()[-1])
    assert set(answer) >= {"instance", "vehicles", "distance", "routes", "seconds", "savings_distance"}
    assert answer["instance"] == "TINY6" and answer["unassigned"] == []
    assert answer["distance"] == pytest.approx(optimum, abs=0.01)
    assert sorted(c for route in answer["routes"] for c in route) == [1, 2, 3, 4, 5, 6]
    assert answer["vehicles"] == len(answer["routes"])
    assert exact_issues(read_instance(TINY), answer["routes"]) == []
    assert answer["savings_distance"] >= answer["distance"] - 0.01


def test_solomon_plans_hold_in_exact_arithmetic():
    instance = read_instance(TINY)
    problem = to_problem(instance)
    plan, baseline = solve(problem), savings(problem)
    assert check_plan(problem, plan) == [] and check_plan(problem, baseline) == []
    assert plan.unassigned == () and exact_issues(instance, customer_routes(plan)) == []
    left_out = {f"customer {key} served 0 times" for key in baseline.unassigned}
    assert set(exact_issues(instance, customer_routes(baseline))) == left_out


@pytest.mark.parametrize(("content", "message"), [
    ("hello\nworld\n", "is not a Solomon instance"),
    (TINY.read_text().replace("   3          30", "   0          30"), "vehicle count"),
    (TINY.read_text().replace("58        66         10", "58        66        -10"), "negative"),
    ("\n".join(TINY.read_text().splitlines()[:10]) + "\n", "is not a Solomon instance"),  # the depot alone
])
def test_cli_refuses_a_file_that_is_not_a_solomon_instance(cli_app, tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    result = cli_app.test_cli_runner().invoke(args=["dispatch", "solve", str(bad)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("target", ["missing.txt", ""])
def test_cli_refuses_a_missing_file_or_a_folder(cli_app, tmp_path, target):
    result = cli_app.test_cli_runner().invoke(args=["dispatch", "solve", str(tmp_path / target)])
    assert result.exit_code == 2
    assert ("does not exist" if target else "is a directory") in result.output


def test_cli_refuses_a_binary_file(cli_app, tmp_path):
    binary = tmp_path / "instance.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    result = cli_app.test_cli_runner().invoke(args=["dispatch", "solve", str(binary)])
    assert result.exit_code == 2 and "not a Solomon instance" in result.output
