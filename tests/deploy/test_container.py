"""The Dockerfile, built with podman and run the way ECS runs it.

The build uses the repository's Dockerfile as it is, on a stand-in for its base image (tests/deploy/podman.py).
Then, like the ECS service: a read-only root filesystem with a writable /tmp, the image's non-root user, the
release step as a one-off container, then Gunicorn, against a fresh PostgreSQL database; and stopped with the
30 s ECS gives a task. Skipped only when podman cannot run here; under CI=true that fails instead.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, VALID_BOOKING, _create_postgres_database, _drop_postgres_database
from tests.deploy.conftest import ROOT, free_port
from tests.deploy.podman import (
    HOST_CA_BUNDLE,
    PodmanUnavailable,
    check_container_runs,
    check_podman_works,
    ensure_base_image,
    podman,
)

pytestmark = pytest.mark.slow

# What the Dockerfile adds to its base, with every feature: labels (reportlab, uharfbuzz), proof-of-delivery images
# (Pillow) and S3 storage / SMS (boto3) too. Held apart from the base: the stand-in base is debootstrapped from
# whatever Debian mirror the machine has, and its size varies with the machine (122 MB on one, 156 MB on another),
# while the production base is the published python:3.11-slim. The README adds the two for the production estimate.
# 85 MB until the courier app (86 MB with it: its barcode reader for phones without one is 1.1 MB of WebAssembly).
# Zones and dispatch add the route solver and shapely: 101 MB measured (numpy and pandas, which pyvroom needs, are
# most of it; their test suites are left out, their vendored libraries kept unstripped), 189 MB in all.
# Live operations add the streams service's gevent (with greenlet and zope.*) and compression (Flask-Compress with
# brotli and zstd): 8.7 MB measured, held to a budget of their own too; 199 MB in all.
PLANNING_REQUIREMENTS = ("pyvroom", "numpy", "pandas", "shapely", "vrplib")
MAX_PLANNING_BYTES = 105_000_000
LIVE_REQUIREMENTS = ("gevent", "Flask-Compress")
MAX_LIVE_BYTES = 10_000_000
MAX_OWN_LAYER_BYTES = 88_000_000 + MAX_PLANNING_BYTES + MAX_LIVE_BYTES
LATER_FEATURE_REQUIREMENTS = ("boto3", "Pillow", "reportlab", "uharfbuzz")
MAX_LATER_FEATURE_BYTES = 70_000_000
# Run inside the image: the installed size (files and their byte-code) of the distributions that only the named
# requirements need, computed from the installed metadata and requirements.txt (reported with the image size).
FEATURE_SIZE_SCRIPT = """
import importlib.metadata as md, json, os, re, sys
from importlib.util import cache_from_source

def name(requirement):
    return re.split(r"[ ;<>=!~\\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")

def closure(roots):
    seen, stack = set(), [name(root) for root in roots]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        try:
            dist = md.distribution(current)
        except md.PackageNotFoundError:
            continue
        seen.add(current)
        stack += [name(r) for r in dist.requires or [] if "extra ==" not in r]
    return seen

features = {name(n) for n in sys.argv[1:]}
top = [name(line) for line in open("requirements.txt") if line.strip() and not line.startswith("#")]
extra = closure(features) - closure([n for n in top if n not in features])
size = 0
for dist_name in extra:
    for file in md.distribution(dist_name).files or []:
        path = str(file.locate())
        if os.path.isfile(path):
            size += os.path.getsize(path)
        if path.endswith(".py"):  # byte-code: beside the module (its source removed) or in __pycache__
            for compiled in (path + "c", cache_from_source(path)):
                if os.path.isfile(compiled):
                    size += os.path.getsize(compiled)
print(json.dumps({"distributions": sorted(extra), "bytes": size}))
"""
# Run inside the image against moto: what the slimmed wheels kept still works. The S3 and SNS clients (their
# service models and endpoint rules), the compiled extensions with their debug information stripped (SQLAlchemy's,
# Pillow's, psycopg2's) and reportlab, all from byte-code alone.
FEATURES_SCRIPT = """
import io, os, boto3, psycopg2.extensions, sqlalchemy.util._collections_cy
from PIL import Image
from reportlab.pdfbase import pdfmetrics
from app.services.shipments.label_text import REGULAR
from app.services.shipments.labels import LabelData, LabelOptions, render_label_pages
aws = {"region_name": "ap-south-1", "endpoint_url": os.environ["AWS_ENDPOINT"]}
s3 = boto3.client("s3", **aws)
s3.create_bucket(Bucket="proof", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
image = io.BytesIO()
Image.new("RGB", (8, 8)).save(image, "JPEG")
s3.put_object(Bucket="proof", Key="pod/1.jpg", Body=image.getvalue())
stored = s3.get_object(Bucket="proof", Key="pod/1.jpg")["Body"].read()
assert Image.open(io.BytesIO(stored)).size == (8, 8)
message = boto3.client("sns", **aws).publish(PhoneNumber="+919876543210", Message="Shipment booked")
# A Hindi label: the vendored fonts are in the image and uharfbuzz shapes with them.
label = render_label_pages([LabelData("3F9A1C2B", "आशा राव", "विक्रम नायर", "कोच्चि 682016")],
                           LabelOptions("4x6", "http://waybill.test", "Asia/Kolkata"))
assert pdfmetrics.getFont(REGULAR).shapable and b"NotoSansDevanagari" in label
# Dispatch: VROOM plans (numpy and pandas from byte-code, its library stripped) and shapely checks an outline.
from app.services.planning.problem import Problem, Stop, Vehicle
from app.services.planning.solver import solve
from app.services.planning.zones import check_outline
plan = solve(Problem(durations=[[0, 60], [60, 0]], distances=[[0, 500], [500, 0]], stops=(Stop("A", 1),),
                     vehicles=(Vehicle("v", 0, 0),)))
assert [visit.key for visit in plan.routes[0].visits] == ["A"] and plan.routes[0].distance == 1000
assert check_outline({"type": "Polygon", "coordinates": [[[77.5, 12.9], [77.7, 12.9], [77.6, 13.0], [77.5, 12.9]]]})
print("ok", bool(message["MessageId"]))
"""
ECS_STOP_TIMEOUT = 30
# One worker: production mode refuses in-memory rate-limit counters with several (no Redis is assumed here).
WEB_WORKERS = 1
SECRET_KEY = "container-test-secret-key"
ADMIN = ("chief", "container-admin-password")


def base_image_name() -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile names its base image in ARG PYTHON_IMAGE"
    return match.group(1)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Iterator[str]:
    """The image built from the Dockerfile (its id); removed afterwards."""
    try:
        check_podman_works()
        ensure_base_image(base_image_name())
        check_container_runs(base_image_name())
    except PodmanUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true but podman cannot run: {exc}")
        pytest.skip(f"podman cannot run here, the container tests are skipped: {exc}")
    iidfile = tmp_path_factory.mktemp("image") / "iid"
    # The host's CA bundle (and pip's configuration, if any) so the build's pip reaches PyPI through this
    # machine's TLS proxy. --format docker keeps HEALTHCHECK (OCI has none). --layers=false: podman 4.3 mounts an
    # empty directory for `RUN --mount=type=bind,from=build` when the build stage comes from its layer cache.
    mounts = ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    if os.path.exists("/etc/pip.conf"):
        mounts += ["-v", "/etc/pip.conf:/etc/pip.conf:ro"]
    podman("build", "--format", "docker", "--layers=false", "--network", "host", *mounts, "--iidfile", str(iidfile),
           "--file", str(ROOT / "Dockerfile"), str(ROOT), timeout=1200)
    image_id = iidfile.read_text().strip()
    yield image_id
    podman("rmi", "--force", image_id, check=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, as the plain postgresql:// URL a task gets from Secrets Manager."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        if IN_CI:
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: the container test needs PostgreSQL.")
        pytest.skip("TEST_DATABASE_URL not set: the container test runs against PostgreSQL")
    url, name = _create_postgres_database(server_url)
    try:
        yield make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    finally:
        _drop_postgres_database(server_url, name)


def env_args(**env: str) -> list[str]:
    return [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]


def ecs_args(port: int, **env: str) -> list[str]:
    """What the task definition gives the container: only /tmp writable, host networking on 127.0.0.1."""
    return ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp", "--network", "host",  # noqa: S108
            *env_args(PORT=str(port), BIND=f"127.0.0.1:{port}", **env)]


def request(url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json",
                                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def logs(name: str) -> str:
    result = podman("logs", name, check=False)
    return result.stdout + result.stderr


def wait_until_ready(name: str, base_url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        assert state == "true", f"the container stopped:\n{logs(name)}"
        try:
            status, body = request(f"{base_url}/readyz", timeout=2)
            if status == 200:
                return body
            last = (status, body)
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"/readyz not ready in {timeout} s (last: {last}):\n{logs(name)}")


def release(image: str, port: int, *extra: str, **env: str) -> str:
    """The release step as a one-off container (the stack's MigrateCommand override)."""
    result = podman("run", "--rm", *extra, *ecs_args(port, **env), image, "flask", "--app", "app", "deploy",
                    timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_image_is_small_runs_as_non_root_and_checks_its_health(image):
    (info,) = json.loads(podman("image", "inspect", image).stdout)
    features = json.loads(podman("run", "--rm", "--network", "host", image, "python", "-c", FEATURE_SIZE_SCRIPT,
                                 *LATER_FEATURE_REQUIREMENTS).stdout)
    planning = json.loads(podman("run", "--rm", "--network", "host", image, "python", "-c", FEATURE_SIZE_SCRIPT,
                                 *PLANNING_REQUIREMENTS).stdout)
    print(f"planning: {planning['bytes'] / 1e6:.1f} MB for {planning['distributions']}")
    assert {"numpy", "pandas", "pyvroom", "shapely"} <= set(planning["distributions"]), planning
    assert planning["bytes"] <= MAX_PLANNING_BYTES, planning
    live = json.loads(podman("run", "--rm", "--network", "host", image, "python", "-c", FEATURE_SIZE_SCRIPT,
                             *LIVE_REQUIREMENTS).stdout)
    print(f"live operations: {live['bytes'] / 1e6:.1f} MB for {live['distributions']}")
    assert {"gevent", "greenlet", "flask-compress", "brotli"} <= set(live["distributions"]), live
    assert live["bytes"] <= MAX_LIVE_BYTES, live
    assert "botocore" in features["distributions"] and "pillow" in features["distributions"], features
    base_size = json.loads(podman("image", "inspect", base_image_name()).stdout)[0]["Size"]
    own = info["Size"] - base_size
    sizes = (f"image {info['Size'] / 1e6:.1f} MB: base {base_size / 1e6:.1f} MB + its own layers {own / 1e6:.1f} MB,"
             f" of which {features['bytes'] / 1e6:.1f} MB for {features}")
    print(sizes)
    assert 0 < own <= MAX_OWN_LAYER_BYTES, sizes
    assert features["bytes"] <= MAX_LATER_FEATURE_BYTES, sizes
    assert info["Config"]["User"] == "10001:10001"
    assert "/healthz" in " ".join(info["Healthcheck"]["Test"])  # kept by --format docker


def test_s3_sns_images_and_labels_work_in_the_image(image):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        result = podman("run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "host",  # noqa: S108
                        *env_args(AWS_ENDPOINT=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing",
                                  AWS_SECRET_ACCESS_KEY="testing"),
                        image, "python", "-c", FEATURES_SCRIPT, check=False)
    finally:
        server.stop()
    assert result.stdout.strip() == "ok True", result.stdout + result.stderr


def test_runs_as_ecs_runs_it_on_postgresql(image, postgres_url):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {"DATABASE_URL": postgres_url, "SECRET_KEY": SECRET_KEY, "SESSION_COOKIE_SECURE": "false",
           "ADMIN_USERNAME": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1], "MAIL_BACKEND": "console",
           "PUBLIC_BASE_URL": base_url, "LOG_LEVEL": "INFO", "WEB_CONCURRENCY": str(WEB_WORKERS)}
    output = release(image, port, **env)
    assert f"Admin {ADMIN[0]} is ready" in output

    name = f"waybill-test-{uuid.uuid4().hex[:10]}"
    podman("run", "--detach", "--name", name, *ecs_args(port, **env), image)
    try:
        assert wait_until_ready(name, base_url) == {"status": "ok", "database": "ok", "schema": "current"}
        uid = podman("exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())").stdout.split()
        assert uid == ["10001", "10001"]
        # The image's HEALTHCHECK follows PORT (not 8000) and passes.
        health = podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        # What the app imports was compiled at build time: a worker does not compile at start.
        # (A dependency's module is its byte-code alone, the app's is source with byte-code in __pycache__.)
        compiled = podman("exec", name, "python", "-c",
                          "import importlib.util as u, os, sys, app, flask, sqlalchemy.orm, gunicorn.app.base\n"
                          "missing = [m.__name__ for m in (app, flask, sqlalchemy.orm, gunicorn.app.base)\n"
                          "           if not m.__file__.endswith('.pyc')\n"
                          "           and not os.path.exists(u.cache_from_source(m.__file__))]\n"
                          "print(missing)").stdout.strip()
        assert compiled == "[]"

        status, booked = request(f"{base_url}/create", VALID_BOOKING)
        assert status == 201, booked
        status, tracked = request(f"{base_url}/track/{booked['tracking_id']}")
        assert status == 200 and tracked["status"] == "Booked", tracked
        status, login = request(f"{base_url}/login", {"username": ADMIN[0], "password": ADMIN[1]})
        assert status == 200 and login["role"] == "admin", login
        deadline = time.monotonic() + 20  # the outbox worker in a web process sends the booking's email
        while " sent to " not in logs(name) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert " sent to " in logs(name), logs(name)

        started = time.monotonic()
        podman("stop", "--time", str(ECS_STOP_TIMEOUT), name, timeout=ECS_STOP_TIMEOUT + 30)
        stopped_in = time.monotonic() - started
        output = logs(name)
        assert stopped_in < ECS_STOP_TIMEOUT, f"podman stop took {stopped_in:.1f} s:\n{output}"
        assert podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0", output
        assert output.count("Notification worker started") == WEB_WORKERS, output
        assert output.count("Notification worker stopped") == WEB_WORKERS, output
        assert "Traceback" not in output and "Shutting down: Master" in output, output
    finally:
        podman("rm", "--force", name, check=False)


def test_the_local_trial_in_docs_deploy_md_works_with_a_shared_sqlite_volume(image):
    """docs/deploy.md's trial: one volume at /srv/waybill/instance, shared by the release step and the server
    (host networking and 127.0.0.1 here instead of the doc's -p 8000:8000)."""
    trial = (ROOT / "docs" / "deploy.md").read_text()
    assert "-v waybill-data:/srv/waybill/instance" in trial and "flask --app app deploy" in trial
    assert "-e WEB_CONCURRENCY=1" in trial
    volume, name, port = f"waybill-test-{uuid.uuid4().hex[:10]}", f"waybill-test-{uuid.uuid4().hex[:10]}", free_port()
    env = {"SECRET_KEY": SECRET_KEY, "SESSION_COOKIE_SECURE": "false", "ADMIN_USERNAME": ADMIN[0],
           "ADMIN_PASSWORD": ADMIN[1]}
    podman("volume", "create", volume)
    try:
        mount = ["--volume", f"{volume}:/srv/waybill/instance"]
        assert f"Admin {ADMIN[0]} is ready" in release(image, port, *mount, **env)
        podman("run", "--detach", "--name", name, *mount, *ecs_args(port, SECRET_KEY=SECRET_KEY,
                                                                     SESSION_COOKIE_SECURE="false",
                                                                     WEB_CONCURRENCY="1"), image)
        assert wait_until_ready(name, f"http://127.0.0.1:{port}")["schema"] == "current"
        status, booked = request(f"http://127.0.0.1:{port}/create", VALID_BOOKING)
        assert status == 201, booked
        status, login = request(f"http://127.0.0.1:{port}/login", {"username": ADMIN[0], "password": ADMIN[1]})
        assert status == 200, login
        podman("stop", "--time", str(ECS_STOP_TIMEOUT), name, timeout=ECS_STOP_TIMEOUT + 30)
    finally:
        podman("rm", "--force", name, check=False)
        podman("volume", "rm", "--force", volume, check=False)
