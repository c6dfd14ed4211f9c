"""A routing problem and its plan, as the dispatch service and the solvers exchange them.

Plain data, no database: `app.services.planning.solver` (VROOM) and `app.services.planning.savings` (the
Clarke-Wright baseline) both take a `Problem` and return a `Plan`, so the dispatch service, the `flask dispatch
solve` command and the benchmark compare them on the same terms.

Units are integers, as VROOM wants them: times in seconds from the plan's origin (the day's midnight in
DISPLAY_TIMEZONE for dispatch, time zero for a Solomon instance), travel times and distances from the matrices,
demands in the units of each capacity dimension (parcels, then grams when weights are planned). A caller holding
fractional units (Solomon's Euclidean distances) scales them and rounds travel times up, so a plan feasible in
integers is feasible in the exact values.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stop:
    """A place to serve once: `key` names it to the caller (a tracking ID, a customer number)."""

    key: str
    location: int  # index into the matrices
    service: int = 0  # time spent there
    demand: tuple[int, ...] = ()  # one figure per capacity dimension; () counts as nothing
    windows: tuple[tuple[int, int], ...] = ()  # service may start within one of them; (): any time


@dataclass(frozen=True)
class Vehicle:
    """A courier (or a Solomon vehicle): leaves `start`, returns to `end`, within `shift`."""

    key: str
    start: int
    end: int
    capacity: tuple[int, ...] = ()  # () : unlimited
    shift: tuple[int, int] | None = None  # (earliest departure, latest return); None: any time


@dataclass(frozen=True)
class Problem:
    durations: list[list[int]]  # travel time from location i to j
    distances: list[list[int]]  # distance from i to j (metres for dispatch, scaled units for Solomon)
    stops: tuple[Stop, ...]
    vehicles: tuple[Vehicle, ...]


@dataclass(frozen=True)
class Visit:
    key: str  # the stop's key
    arrival: int  # when the vehicle gets there
    start: int  # when service starts (later than arrival when it waits for the window)


@dataclass(frozen=True)
class Route:
    vehicle: str  # the vehicle's key
    visits: tuple[Visit, ...]  # in order, depot not included
    distance: int  # start → visits → end, from the distance matrix
    duration: int  # departure to return, waiting and service included
    departure: int = 0
    arrival: int = 0  # back at `end`


@dataclass(frozen=True)
class Plan:
    solver: str  # "vroom 1.15.2", "savings"
    routes: tuple[Route, ...]  # vehicles with at least one visit
    unassigned: tuple[str, ...] = ()  # stop keys left out
    seconds: float = 0.0  # wall time of the solve
    extra: dict = field(default_factory=dict)

    @property
    def distance(self) -> int:
        return sum(route.distance for route in self.routes)
