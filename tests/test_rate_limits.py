"""Rate limits per client: on tracking (hits, and a much smaller budget for misses), on search, keyed on the
address ProxyFix trusts, answered 429 with Retry-After; and counters shared by several real processes."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from itertools import cycle

import pytest

from app import create_app
from tests.conftest import IN_CI, VALID_BOOKING
from tests.deploy.conftest import ROOT, free_port, server_env, start_gunicorn, tool

# Several processes sharing Redis, and waits for windows to pass: 5-7 s a test. The counters live in memory or
# Redis, never in the database: one database says it all (tests/README.md).
pytestmark = [pytest.mark.slow, pytest.mark.one_database]

ALB = "10.0.0.2"  # the load balancer: every request reaches the app from this peer address
UNKNOWN_ID = "FFFFFFFF"


@pytest.fixture
def limited(make_config, made_apps):
    """An app with small limits, and a way to book a shipment in it."""
    def make(**overrides):
        settings = {"RATELIMIT_ENABLED": True, "RATELIMIT_TRACK": "5 per minute",
                    "RATELIMIT_TRACK_MISS": "2 per minute", "RATELIMIT_SEARCH": "3 per minute",
                    "RATELIMIT_CREATE": "100 per minute", **overrides}
        made_apps.append(create_app(make_config(**settings)))
        return made_apps[-1]
    return make


def book(application) -> str:
    response = application.test_client().post("/create", json=VALID_BOOKING,
                                              environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def statuses(client, path: str, times: int, **kwargs) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(times)]


def test_tracking_is_limited_per_client_and_answers_429_with_retry_after(limited):
    application = limited()
    tracking_id = book(application)
    client = application.test_client()
    assert statuses(client, f"/track/{tracking_id}", 5) == [200] * 5
    refused = client.get(f"/track/{tracking_id}")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "Too many tracking requests" in refused.get_json()["error"]
    page = client.get(f"/track/{tracking_id}", headers={"Accept": "text/html"})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Too many tracking requests" in page.get_data(as_text=True)
    other = application.test_client()
    assert other.get(f"/track/{tracking_id}", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


def test_misses_have_a_much_smaller_budget_that_then_stops_hits_too(limited):
    application = limited()
    tracking_id = book(application)
    client = application.test_client()
    assert client.get(f"/track/{tracking_id}").status_code == 200  # a hit costs nothing of the miss budget
    assert statuses(client, f"/track/{UNKNOWN_ID}", 2) == [404, 404]
    assert client.get("/track/not-an-id").status_code == 429  # malformed IDs are misses too
    refused = client.get(f"/track/{tracking_id}")
    assert refused.status_code == 429 and "unknown tracking IDs" in refused.get_json()["error"]
    assert int(refused.headers["Retry-After"]) > 0
    neighbour = {"REMOTE_ADDR": "192.0.2.8"}
    assert client.get(f"/track/{tracking_id}", environ_base=neighbour).status_code == 200


def test_hits_alone_are_not_held_to_the_miss_budget(limited):
    application = limited(RATELIMIT_TRACK_MISS="1 per minute")
    tracking_id = book(application)
    assert statuses(application.test_client(), f"/track/{tracking_id}", 5) == [200] * 5


def test_the_tracking_pages_own_refresh_stays_well_inside_the_default_limit(make_config, made_apps):
    """Ten tabs open on ten shipments behind one address for a minute: each loads the page once and then asks
    every TRACK_REFRESH_SECONDS for news (a conditional request that gets 304)."""
    application = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_CREATE="100 per minute"))
    made_apps.append(application)
    refreshes_per_minute = 60 // application.config["TRACK_REFRESH_SECONDS"]
    client = application.test_client()
    html = {"Accept": "text/html"}
    for _ in range(10):
        tracking_id = book(application)
        page = client.get(f"/track/{tracking_id}", headers=html)
        assert page.status_code == 200
        etag = re.search(r'data-live-etag="([^"]+)"', page.get_data(as_text=True)).group(1)
        for _ in range(refreshes_per_minute):
            response = client.get(f"/track/{tracking_id}?fragment=timeline",
                                  headers={**html, "If-None-Match": f'"{etag}"'})
            assert response.status_code == 304
    assert int(response.headers["X-RateLimit-Remaining"]) >= 60  # half the budget still unused


def test_search_by_path_and_by_form_share_one_budget(limited):
    application = limited()
    client = application.test_client()
    assert statuses(client, "/search/9876543210", 2) == [200, 200]
    assert client.post("/search", json={"mobile": "9876543210"}).status_code == 200
    refused = client.post("/search", json={"mobile": "9876543210"})
    assert refused.status_code == 429 and "Too many searches" in refused.get_json()["error"]
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/search/9876543210").status_code == 429


# --- the client address behind a proxy ------------------------------------------------------------------------

def test_behind_one_trusted_proxy_clients_get_budgets_of_their_own(limited):
    application = limited(TRUST_PROXY_HOPS=1)
    client = application.test_client()

    def search(client_address: str) -> int:
        return client.get("/search/9876543210", environ_base={"REMOTE_ADDR": ALB},
                          headers={"X-Forwarded-For": client_address}).status_code

    assert [search("203.0.113.1") for _ in range(3)] == [200, 200, 200]
    assert search("203.0.113.1") == 429
    assert search("203.0.113.2") == 200  # another customer behind the same load balancer
    # The proxy appends the address it saw: what a client wrote before it does not make it someone else.
    assert search("198.51.100.9, 203.0.113.1") == 429


def test_without_trusted_proxies_a_forged_forwarded_for_gets_no_fresh_budget(limited):
    application = limited()  # TRUST_PROXY_HOPS=0, the default
    assert application.config["TRUST_PROXY_HOPS"] == 0
    client = application.test_client()
    codes = [client.get("/search/9876543210", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
             for n in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_login_budget_is_keyed_on_the_forwarded_client_too(limited):
    application = limited(TRUST_PROXY_HOPS=1, RATELIMIT_LOGIN="2 per minute")
    client = application.test_client()

    def login(client_address: str) -> int:
        return client.post("/login", json={"username": "x", "password": "y"}, environ_base={"REMOTE_ADDR": ALB},
                           headers={"X-Forwarded-For": client_address}).status_code

    assert [login("203.0.113.1") for _ in range(3)] == [401, 401, 429]
    assert login("203.0.113.2") == 401


def test_successful_sign_ins_do_not_spend_the_offices_login_budget(limited):
    """Ten staff behind one office address sign in at shift start: more successes than the limit all pass, and
    only failures count towards it."""
    from app.extensions import db
    from app.services.staff.users import create_user

    application = limited(RATELIMIT_LOGIN="3 per minute")
    with application.app_context():
        for n in range(6):
            create_user(f"clerk{n}", "correct-horse-1", "operator")
        db.session.commit()
    office = {"REMOTE_ADDR": "203.0.113.50"}
    for n in range(6):
        response = application.test_client().post(
            "/login", json={"username": f"clerk{n}", "password": "correct-horse-1"}, environ_base=office)
        assert response.status_code == 200, response.get_json()
    client = application.test_client()
    wrong = {"username": "clerk0", "password": "wrong-password-1"}
    assert [client.post("/login", json=wrong, environ_base=office).status_code for _ in range(3)] == [401] * 3
    refused = client.post("/login", json={"username": "clerk1", "password": "correct-horse-1"}, environ_base=office)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 60
    message = refused.get_json()["error"]
    assert re.fullmatch(r"Too many failed sign-ins from your address: try again in (\d+) seconds?\.", message)
    assert abs(int(re.search(r"\d+", message).group()) - wait) <= 1
    page = client.post("/login", json={"username": "clerk1", "password": "x"}, environ_base=office,
                       headers={"Accept": "text/html", "Accept-Language": "hi"})
    assert page.status_code == 429
    assert re.search(r"आपके पते से बहुत ज़्यादा असफल साइन-इन हुए हैं: \d+ सेकंड बाद फिर से कोशिश करें।",
                     page.get_data(as_text=True))


def test_an_unreachable_store_does_not_turn_requests_into_errors(limited):
    """Redis away: counters fall back to this process's memory, so the limit still holds, and nothing is a 500."""
    application = limited(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    client = application.test_client()
    assert statuses(client, "/search/9876543210", 5) == [200, 200, 200, 429, 429]


# --- several processes, one Redis -----------------------------------------------------------------------------

@pytest.fixture
def redis_url(tmp_path_factory):
    """A private redis-server on a free port, without persistence, for one test: no other run (or test)
    shares its counters."""
    executable = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                                  if os.path.exists("/usr/bin/redis-server") else None)
    if executable is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed (apt-get install -y redis-server)")
        pytest.skip("redis-server not installed")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    process.terminate()
    process.wait(10)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def start_servers(tmp_path, database_url: str, count: int, **settings: str):
    database_path = tmp_path / "unused.db"  # the servers use database_url; LiveGunicorn only records a path
    return [start_gunicorn(server_env(database_url, RATELIMIT_ENABLED="true", RATELIMIT_SEARCH="6 per minute",
                                      ACCESS_LOG="off", NOTIFY_WORKER_IN_WEB="false", **settings),
                           tmp_path / f"gunicorn-{n}.log", database_path) for n in range(count)]


def test_a_limit_holds_across_processes_sharing_redis(app, redis_url, tmp_path):
    """Two Gunicorn masters with two workers each (production settings) take turns answering one client:
    a limit of 6 lets exactly 6 of 10 searches through."""
    servers = start_servers(tmp_path, app.config["SQLALCHEMY_DATABASE_URI"], 2, WEB_CONCURRENCY="2",
                            RATELIMIT_STORAGE_URI=redis_url)
    try:
        codes = [status_of(f"{server.url}/search/9876543210") for server, _ in zip(cycle(servers), range(10))]
    finally:
        for server in servers:
            server.stop()
    assert codes == [200] * 6 + [429] * 4


def test_without_a_shared_store_each_process_counts_alone(app, tmp_path):
    """The same turns with counters in memory (one worker each, development): each process lets 6 through."""
    servers = start_servers(tmp_path, app.config["SQLALCHEMY_DATABASE_URI"], 2, WAYBILL_ENV="development",
                            WEB_CONCURRENCY="1", RATELIMIT_STORAGE_URI="memory://")
    try:
        codes = [status_of(f"{server.url}/search/9876543210") for server, _ in zip(cycle(servers), range(14))]
    finally:
        for server in servers:
            server.stop()
    assert codes == [200] * 12 + [429] * 2


def test_production_refuses_counters_in_memory_with_several_workers(tmp_path):
    env = server_env(f"sqlite:///{tmp_path / 'never-opened.db'}", RATELIMIT_ENABLED="true",
                     RATELIMIT_STORAGE_URI="memory://", WEB_CONCURRENCY="3", BIND=f"127.0.0.1:{free_port()}")
    result = subprocess.run([tool("gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Refusing to start in production: RATELIMIT_STORAGE_URI=memory://" in output
    assert "3 worker processes" in output and "WEB_CONCURRENCY=1" in output
    assert "Booting worker" not in output
