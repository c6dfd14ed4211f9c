"""Travel matrices (app.services.planning.travel): the straight-line estimate, and an OSRM table service played by
a local HTTP stand-in (in blocks, gaps filled, failures falling back with a log line that names no place). No app,
no database."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from app.domain.field import haversine_m
from app.services.planning.travel import haversine_matrices, travel_matrices

KOCHI = [(9.9816, 76.2999), (9.9900, 76.3100), (9.9700, 76.2900)]
SETTINGS = {"road_factor": 1.3, "speed_kmh": 18.0}


def test_the_estimate_is_the_great_circle_times_the_road_factor_at_the_average_speed():
    matrices = haversine_matrices(KOCHI, **SETTINGS)
    straight = haversine_m(*KOCHI[0], *KOCHI[1])
    assert matrices.source == "haversine"
    assert matrices.distances[0][1] == round(straight * 1.3) == matrices.distances[1][0]
    assert matrices.durations[0][1] == -(-straight * 1.3 // 5)  # 18 km/h is 5 m/s, rounded up
    assert [matrices.distances[i][i] for i in range(3)] == [0, 0, 0]
    assert all(isinstance(value, int) for row in matrices.durations + matrices.distances for value in row)
    with pytest.raises(ValueError):
        haversine_matrices(KOCHI, road_factor=0, speed_kmh=18)


def test_without_an_osrm_url_no_request_is_made():
    assert travel_matrices(KOCHI, **SETTINGS) == haversine_matrices(KOCHI, **SETTINGS)


class OsrmStandIn:
    """An OSRM table service on 127.0.0.1: answers every pair with 100 s × (i + j + 1) and 1000 m × (i + j + 1),
    i and j counted in the whole list of places the test sent (it knows them by their coordinates); or what the
    test sets in `answer` (a status and a body), after `delay` seconds. Records each request's query."""

    def __init__(self, places) -> None:
        self.places = [f"{lon:.6f},{lat:.6f}" for lat, lon in places]
        self.requests: list[dict] = []
        self.answer: tuple[int, bytes] | None = None
        self.delay = 0.0
        self.gaps: set[tuple[int, int]] = set()  # pairs with no road (null)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the standard library's name
                parts = urlsplit(self.path)
                coordinates = unquote(parts.path.rsplit("/", 1)[1]).split(";")
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                stand_in.requests.append({"path": parts.path, "count": len(coordinates), **query})
                time.sleep(stand_in.delay)
                if stand_in.answer is not None:
                    status, body = stand_in.answer
                else:
                    status, body = 200, json.dumps(stand_in.table(coordinates, query)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except BrokenPipeError:  # the client gave up waiting, as it should
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def table(self, coordinates: list[str], query: dict) -> dict:
        index = [self.places.index(c) for c in coordinates]
        sources = [index[int(s)] for s in query["sources"].split(";")] if "sources" in query else index
        targets = [index[int(d)] for d in query["destinations"].split(";")] if "destinations" in query else index
        assert query["annotations"] == "duration,distance"

        def figure(i, j, unit):
            return None if (i, j) in self.gaps else unit * (i + j + 1) + 0.4

        return {"code": "Ok", "durations": [[figure(i, j, 100) for j in targets] for i in sources],
                "distances": [[figure(i, j, 1000) for j in targets] for i in sources]}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


def test_osrm_gives_the_table_in_whole_seconds_rounded_up_and_metres():
    with OsrmStandIn(KOCHI) as osrm:
        matrices = travel_matrices(KOCHI, osrm_url=osrm.url, **SETTINGS)
    assert matrices.source == "osrm"
    assert matrices.durations == [[100 * (i + j + 1) + 1 for j in range(3)] for i in range(3)]
    assert matrices.distances == [[1000 * (i + j + 1) for j in range(3)] for i in range(3)]
    assert len(osrm.requests) == 1 and osrm.requests[0]["path"].startswith("/table/v1/driving/")
    assert osrm.requests[0]["count"] == 3 and "sources" not in osrm.requests[0]


def test_osrm_is_asked_in_blocks_each_within_the_servers_table_size():
    places = [(9.97 + 0.001 * n, 76.29 + 0.001 * n) for n in range(5)]
    with OsrmStandIn(places) as osrm:
        matrices = travel_matrices(places, osrm_url=osrm.url, block=2, **SETTINGS)
    assert len(osrm.requests) == 9  # 3 blocks of sources × 3 of destinations
    assert max(request["count"] for request in osrm.requests) <= 4
    assert matrices.distances == [[1000 * (i + j + 1) for j in range(5)] for i in range(5)]


def test_a_pair_osrm_finds_no_road_for_takes_the_estimate():
    estimate = haversine_matrices(KOCHI, **SETTINGS)
    with OsrmStandIn(KOCHI) as osrm:
        osrm.gaps = {(0, 2)}
        matrices = travel_matrices(KOCHI, osrm_url=osrm.url, **SETTINGS)
    assert matrices.source == "osrm"
    assert (matrices.durations[0][2], matrices.distances[0][2]) == (estimate.durations[0][2], estimate.distances[0][2])
    assert matrices.distances[2][0] == 3000


@pytest.mark.parametrize(("answer", "said"), [
    ((500, b"oops"), "HTTP 500"),
    ((400, b'{"code": "TooBig", "message": "Too many table coordinates"}'), "HTTP 400"),
    ((200, b'{"code": "NoTable"}'), "answered 'NoTable'"),
    ((200, b"<html>not json</html>"), "answer is not JSON"),
    ((200, b'{"code": "Ok", "durations": [[0]]}'), "durations missing or of the wrong shape"),
    ((200, b'{"code": "Ok", "durations": [[0, 1, 2], [0, 1, 2], [0, 1, "x"]], "distances": []}'),
     "durations holds something that is not a figure"),
])
def test_a_bad_answer_falls_back_to_the_estimate_with_a_log_line_naming_no_place(answer, said, caplog):
    with OsrmStandIn(KOCHI) as osrm, caplog.at_level(logging.WARNING, logger="app.services.planning.travel"):
        osrm.answer = answer
        matrices = travel_matrices(KOCHI, osrm_url=osrm.url, **SETTINGS)
    assert matrices == haversine_matrices(KOCHI, **SETTINGS)
    [record] = caplog.records
    assert said in record.getMessage() and "3 places" in record.getMessage()
    assert "76.29" not in record.getMessage() and "9.98" not in record.getMessage()


def test_a_server_that_answers_late_or_not_at_all_falls_back(caplog):
    with OsrmStandIn(KOCHI) as osrm, caplog.at_level(logging.WARNING, logger="app.services.planning.travel"):
        osrm.delay = 1.0
        started = time.monotonic()
        slow = travel_matrices(KOCHI, osrm_url=osrm.url, timeout=0.2, **SETTINGS)
        assert time.monotonic() - started < 1.0
        url = osrm.url
    closed = travel_matrices(KOCHI, osrm_url=url, timeout=0.5, **SETTINGS)  # the server is gone
    not_http = travel_matrices(KOCHI, osrm_url="file:///etc", **SETTINGS)
    assert slow == closed == not_http == haversine_matrices(KOCHI, **SETTINGS)
    assert "not an http(s) URL" in caplog.records[-1].getMessage()
    assert len(caplog.records) == 3
