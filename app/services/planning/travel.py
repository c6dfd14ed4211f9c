"""How far and how long between places: the matrices a dispatch plans with.

Rules:
- By default: the great-circle distance × ROAD_FACTOR (roads are not straight), in whole metres, driven at
  AVERAGE_SPEED_KMH, in whole seconds rounded up (a plan that keeps the rounded times keeps the true ones).
- With OSRM_URL: the OSRM server's table service (`/table/v1/driving/…?annotations=duration,distance`), in
  blocks of at most OSRM_BLOCK × OSRM_BLOCK places, so no request goes past a server's table size limit
  (osrm-routed allows 100 places by default). A pair OSRM finds no road for gets the straight-line estimate.
- A server that cannot be reached, answers late (OSRM_TIMEOUT seconds a request) or answers anything but a
  table: the whole matrix falls back to the straight-line estimate, with one log line saying why (never the
  places: they are customers' addresses on a map).
"""
from __future__ import annotations

import http.client
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.error import URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

from app.domain.field import haversine_m

log = logging.getLogger(__name__)

Point = tuple[float, float]  # (lat, lon)
OSRM_BLOCK = 50
OSRM_TIMEOUT = 10.0
OSRM_MAX_BYTES = 16 * 1024 * 1024  # a 50 × 50 table is about 50 kB; anything this big is not one


class TravelUnavailable(Exception):
    """The routing server could not give a table: the reason, without the places."""


@dataclass(frozen=True)
class Matrices:
    durations: list[list[int]]  # seconds from place i to place j
    distances: list[list[int]]  # metres
    source: str  # "haversine" or "osrm"


def travel_matrices(points: Sequence[Point], *, road_factor: float, speed_kmh: float, osrm_url: str | None = None,
                    timeout: float = OSRM_TIMEOUT, block: int = OSRM_BLOCK) -> Matrices:
    """The matrices between `points` (see the module's rules): from OSRM when `osrm_url` is given and answers,
    else from the straight-line estimate."""
    estimate = haversine_matrices(points, road_factor=road_factor, speed_kmh=speed_kmh)
    if not osrm_url or len(points) < 2:
        return estimate
    try:
        return osrm_matrices(points, osrm_url, fallback=estimate, timeout=timeout, block=block)
    except TravelUnavailable as problem:
        log.warning("OSRM table unavailable (%s): travel estimated from straight lines × %g at %g km/h for %d "
                    "places.", problem, road_factor, speed_kmh, len(points))
        return estimate


def haversine_matrices(points: Sequence[Point], *, road_factor: float, speed_kmh: float) -> Matrices:
    """Great-circle distance × road_factor in whole metres; the time at speed_kmh in whole seconds, rounded up."""
    if road_factor <= 0 or speed_kmh <= 0:
        raise ValueError("ROAD_FACTOR and AVERAGE_SPEED_KMH must be more than 0.")
    metres_per_second = speed_kmh / 3.6
    distances, durations = [], []
    for a in points:
        road = [haversine_m(a[0], a[1], b[0], b[1]) * road_factor for b in points]
        distances.append([round(metres) for metres in road])
        durations.append([math.ceil(metres / metres_per_second) for metres in road])
    return Matrices(durations=durations, distances=distances, source="haversine")


def osrm_matrices(points: Sequence[Point], url: str, *, fallback: Matrices, timeout: float = OSRM_TIMEOUT,
                  block: int = OSRM_BLOCK) -> Matrices:
    """The OSRM table between `points`, asked for in blocks; a pair with no road takes `fallback`'s figures.
    TravelUnavailable when any block cannot be had."""
    size = len(points)
    durations = [row[:] for row in fallback.durations]
    distances = [row[:] for row in fallback.distances]
    for first_source in range(0, size, block):
        sources = list(range(first_source, min(first_source + block, size)))
        for first_target in range(0, size, block):
            targets = list(range(first_target, min(first_target + block, size)))
            table = _osrm_table(url, points, sources, targets, timeout)
            for row, i in zip(_rows(table, "durations", sources, targets), sources, strict=True):
                for value, j in zip(row, targets, strict=True):
                    if value is not None:
                        durations[i][j] = math.ceil(value)
            for row, i in zip(_rows(table, "distances", sources, targets), sources, strict=True):
                for value, j in zip(row, targets, strict=True):
                    if value is not None:
                        distances[i][j] = round(value)
    return Matrices(durations=durations, distances=distances, source="osrm")


def _osrm_table(url: str, points: Sequence[Point], sources: list[int], targets: list[int], timeout: float) -> dict:
    """One table request: the block's places once each (a place both source and target is sent once)."""
    places = sorted(set(sources) | set(targets))
    position = {place: number for number, place in enumerate(places)}
    coordinates = ";".join(f"{points[place][1]:.6f},{points[place][0]:.6f}" for place in places)
    query = "annotations=duration,distance"
    if len(places) != len(sources) or len(places) != len(targets):
        query += ("&sources=" + ";".join(str(position[i]) for i in sources)
                  + "&destinations=" + ";".join(str(position[j]) for j in targets))
    if not url.lower().startswith(("http://", "https://")):
        raise TravelUnavailable("OSRM_URL is not an http(s) URL")
    request = Request(f"{url}/table/v1/driving/{quote(coordinates, safe=',;.-')}?{query}",  # noqa: S310 - http(s)
                      headers={"Accept": "application/json", "User-Agent": "Waybill dispatch"})
    try:
        with urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked above: http(s) only
            body = response.read(OSRM_MAX_BYTES + 1)
    except URLError as error:  # HTTPError too: a 400 says the table is too large or a place is not routable
        raise TravelUnavailable(_url_error(error)) from None
    except (OSError, ValueError, http.client.HTTPException) as error:  # a timeout, a broken answer, a bad URL
        raise TravelUnavailable(type(error).__name__) from None
    if len(body) > OSRM_MAX_BYTES:
        raise TravelUnavailable("answer too large")
    try:
        table = json.loads(body)
    except ValueError:
        raise TravelUnavailable("answer is not JSON") from None
    if not isinstance(table, dict) or table.get("code") != "Ok":
        code = table.get("code") if isinstance(table, dict) else None
        raise TravelUnavailable(f"answered {str(code)[:40]!r}" if code else "answer is not a table")
    return table


def _url_error(error: URLError) -> str:
    status = getattr(error, "code", None)
    if status is not None:
        return f"HTTP {status}"
    reason = error.reason
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)[:80]


def _rows(table: dict, name: str, sources: list[int], targets: list[int]) -> list[list[float | None]]:
    rows = table.get(name)
    if (not isinstance(rows, list) or len(rows) != len(sources)
            or any(not isinstance(row, list) or len(row) != len(targets) for row in rows)):
        raise TravelUnavailable(f"{name} missing or of the wrong shape")
    for row in rows:
        for value in row:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value) or value < 0):
                raise TravelUnavailable(f"{name} holds something that is not a figure")
    return rows
