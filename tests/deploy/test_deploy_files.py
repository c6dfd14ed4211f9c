"""What the linters cannot know: the Dockerfile, buildspec and templates say what issue 5 asks of them."""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import re
import zipfile

import pytest
import yaml
from cfnlint.decode import decode

from tests.deploy.conftest import ROOT

BASE_IMAGE = "public.ecr.aws/docker/library/python:3.11-slim"


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def service() -> dict:
    template, matches = decode(str(ROOT / "deploy" / "service.yml"))
    assert not matches
    return template["Resources"]


@pytest.fixture(scope="module")
def container(service) -> dict:
    (definition,) = service["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    return definition


# --- Dockerfile -----------------------------------------------------------------------------------------------

def test_image_is_multi_stage_from_the_public_ecr_mirror(dockerfile):
    assert f"ARG PYTHON_IMAGE={BASE_IMAGE}" in dockerfile
    stages = re.findall(r"^FROM (\S+) AS (\w+)", dockerfile, re.MULTILINE)
    assert stages == [("${PYTHON_IMAGE}", "build"), ("${PYTHON_IMAGE}", "runtime")]


def test_runtime_stage_installs_only_runtime_requirements_from_built_wheels(dockerfile):
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.startswith("#"))
    runtime = instructions.split(" AS runtime", 1)[1]
    assert "requirements-dev" not in instructions
    assert "pip install --no-index --no-compile --find-links=/wheels -r requirements.txt" in runtime
    assert "from=build" in runtime
    build = instructions.split(" AS runtime", 1)[0]
    assert "pip wheel --wheel-dir /wheels -r requirements.txt -c constraints.txt" in build  # what CI tested


def test_constraints_pin_every_distribution_the_requirements_name():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    assert all(pins.values()), "every constraint is an exact pin"
    for file in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / file).read_text().splitlines():
            if line.strip() and not line.startswith(("#", "-")):
                key = re.split(r"[\[=<>~ ]", line, maxsplit=1)[0].lower().replace("_", "-")
                assert pins.get(key) == line.split("==")[1].strip(), f"{file}: {line!r}, constraints: {pins.get(key)!r}"


def test_image_runs_gunicorn_with_the_config_as_a_non_root_user(dockerfile):
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]' in dockerfile
    assert "WAYBILL_ENV=production" in dockerfile
    assert "--preload" not in dockerfile


def test_image_health_check_calls_healthz_without_curl(dockerfile):
    (check,) = re.findall(r"^HEALTHCHECK .*?CMD (\[.*\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert "/healthz" in check and "urllib.request" in check and "curl" not in check


def test_build_context_is_an_allow_list_that_keeps_secrets_and_tests_out():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {"requirements.txt", "constraints.txt", "gunicorn.conf.py", "app/", "migrations/",
                       "deploy/slim_wheels.py", "translations/"}


# --- buildspec ------------------------------------------------------------------------------------------------

def test_buildspec_phases_do_what_the_pipeline_needs():
    spec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    assert spec["version"] == 0.2
    assert list(spec["phases"]) == ["install", "pre_build", "build", "post_build"]
    pre_build = " ; ".join(spec["phases"]["pre_build"]["commands"])
    assert "aws ecr get-login-password" in pre_build and "docker login" in pre_build
    assert "CODEBUILD_RESOLVED_SOURCE_VERSION" in pre_build and "cut -c 1-7" in pre_build
    assert "bash .ci/run" in pre_build  # CI's own test command: SQLite and PostgreSQL
    install = " ; ".join(spec["phases"]["install"]["commands"])
    assert "install -y -qq postgresql" in install and "trust" in install
    build = " ; ".join(spec["phases"]["build"]["commands"])
    assert "docker build" in build and ":$IMAGE_TAG" in build and ":latest" in build
    post_build = " ; ".join(spec["phases"]["post_build"]["commands"])
    assert post_build.count("docker push") == 2
    assert "imagedefinitions.json" in post_build
    assert spec["artifacts"]["files"] == ["imagedefinitions.json"]


def test_buildspec_container_name_matches_the_task_definition(container):
    spec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    assert spec["env"]["variables"]["CONTAINER_NAME"] == container["Name"]


# --- service template -----------------------------------------------------------------------------------------

def test_task_is_fargate_512_cpu_1024_mb(service):
    properties = service["TaskDefinition"]["Properties"]
    assert properties["RequiresCompatibilities"] == ["FARGATE"]
    assert (properties["Cpu"], properties["Memory"]) == ("512", "1024")


def test_target_group_checks_readyz_and_the_container_checks_healthz(service, container):
    assert service["TargetGroup"]["Properties"]["HealthCheckPath"] == "/readyz"
    assert any("/healthz" in part for part in container["HealthCheck"]["Command"])


def test_one_health_check_definition_that_follows_port(dockerfile, service, container):
    """ECS ignores an image's HEALTHCHECK, so the task definition repeats it: the same command and timings."""
    instructions = dockerfile.replace("\\\n", " ")
    ((options, check),) = re.findall(r"^HEALTHCHECK (.*?)\s+CMD (\[.*\])$", instructions, re.MULTILINE)
    assert container["HealthCheck"]["Command"] == ["CMD", *json.loads(check)]
    assert "os.environ.get('PORT'" in check and "8000/" not in check
    timings = dict(re.findall(r"--([a-z-]+)=(\d+)s?", options))
    health = container["HealthCheck"]
    assert (health["Interval"], health["Timeout"], health["StartPeriod"], health["Retries"]) == (
        int(timings["interval"]), int(timings["timeout"]), int(timings["start-period"]), int(timings["retries"]))
    # The port the process listens on (PORT) is the one the load balancer and the security group use.
    port = {variable["Name"]: variable["Value"] for variable in container["Environment"]}["PORT"]
    assert [mapping["ContainerPort"] for mapping in container["PortMappings"]] == [int(port)]
    assert service["TargetGroup"]["Properties"]["Port"] == int(port)
    assert service["Service"]["Properties"]["LoadBalancers"][0]["ContainerPort"] == int(port)


def test_rolling_deployment_keeps_full_capacity_and_rolls_back(service):
    config = service["Service"]["Properties"]["DeploymentConfiguration"]
    assert config["MinimumHealthyPercent"] == 100 and config["MaximumPercent"] == 200
    assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_stop_timeout_leaves_room_for_gunicorns_graceful_stop(container, service):
    import runpy

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["graceful_timeout"] < container["StopTimeout"] <= 120
    delay = {a["Key"]: a["Value"] for a in service["TargetGroup"]["Properties"]["TargetGroupAttributes"]}
    assert int(delay["deregistration_delay.timeout_seconds"]) <= container["StopTimeout"]


def test_auto_scaling_tracks_cpu_and_requests_per_target(service):
    metrics = {resource["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
               ["PredefinedMetricType"] for resource in service.values()
               if resource["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"}
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


def test_every_secret_comes_from_secrets_manager_and_none_from_plain_environment(container):
    secret_names = {secret["Name"] for secret in container["Secrets"] if isinstance(secret, dict)
                    and "Name" in secret}
    conditional = {item["Fn::If"][1]["Name"] for item in container["Secrets"] if "Fn::If" in item}
    assert {"SECRET_KEY", "ADMIN_PASSWORD", "DATABASE_URL"} <= secret_names
    assert conditional == {"MAIL_USERNAME", "MAIL_PASSWORD"}
    plain = {variable["Name"] for variable in container["Environment"]}
    assert not plain & {"SECRET_KEY", "ADMIN_PASSWORD", "DATABASE_URL", "MAIL_USERNAME", "MAIL_PASSWORD"}


def test_database_is_private_encrypted_postgresql_with_a_generated_password(service):
    database = service["Database"]["Properties"]
    assert database["Engine"] == "postgres"
    assert database["StorageEncrypted"] is True and database["PubliclyAccessible"] is False
    assert "resolve:secretsmanager" in str(database["MasterUserPassword"])
    assert "GenerateSecretString" in service["DatabaseCredentials"]["Properties"]


def test_logs_go_to_cloudwatch_with_retention(service, container):
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert "RetentionInDays" in service["LogGroup"]["Properties"]


def test_outputs_document_the_one_off_migration_task():
    template, _ = decode(str(ROOT / "deploy" / "service.yml"))
    command = str(template["Outputs"]["MigrateCommand"]["Value"])
    assert "aws ecs run-task" in command and '"flask","--app","app","deploy"' in command


def test_pipeline_goes_from_source_to_codebuild_to_ecs():
    template, matches = decode(str(ROOT / "deploy" / "pipeline.yml"))
    assert not matches
    resources = template["Resources"]
    stages = resources["Pipeline"]["Properties"]["Stages"]
    assert [stage["Name"] for stage in stages] == ["Source", "Build", "Deploy"]
    assert stages[2]["Actions"][0]["ActionTypeId"]["Provider"] == "ECS"
    assert stages[2]["Actions"][0]["Configuration"]["FileName"] == "imagedefinitions.json"
    project = resources["BuildProject"]["Properties"]
    assert project["Source"]["BuildSpec"] == "buildspec.yml"
    assert project["Environment"]["PrivilegedMode"] is True


def test_the_outbox_worker_can_run_as_its_own_service(service):
    assert service["NotifierService"]["Condition"] == "SeparateNotifier"
    (definition,) = service["NotifierTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert definition["Command"] == ["flask", "--app", "app", "notifications", "worker"]
    assert definition["Name"] == "web"  # the pipeline's one imagedefinitions.json deploys it too
    plain = {variable["Name"]: variable["Value"] for variable in definition["Environment"]}
    assert plain["NOTIFY_WORKER_IN_WEB"] == "false"


def test_tasks_trust_the_load_balancer_as_one_proxy_hop_and_share_a_redis_for_limits(service, container):
    plain = {variable["Name"]: variable["Value"] for variable in container["Environment"]}
    assert plain["TRUST_PROXY_HOPS"] == "1"
    storage = plain["RATELIMIT_STORAGE_URI"]["Fn::If"]
    assert storage[0] == "CreateLimiterCache"
    assert storage[1]["Fn::Sub"].startswith("rediss://${LimiterCache.PrimaryEndPoint.Address}")
    template, _ = decode(str(ROOT / "deploy" / "service.yml"))
    assert template["Parameters"]["RateLimitStorageUri"]["Default"] == ""  # empty: the stack's own Redis
    cache = service["LimiterCache"]["Properties"]
    assert cache["Engine"] == "redis" and cache["TransitEncryptionEnabled"] is True
    ingress = service["LimiterCacheSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [rule["SourceSecurityGroupId"] for rule in ingress] == [{"Ref": "ServiceSecurityGroup"}]


def test_proof_of_delivery_files_go_to_a_private_bucket_only_the_task_role_may_use(service, container):
    plain = {variable["Name"]: variable["Value"] for variable in container["Environment"]}
    assert plain["STORAGE_BACKEND"] == "s3" and plain["S3_BUCKET"] == {"Ref": "EvidenceBucket"}
    assert plain["S3_PREFIX"] == "proof-of-delivery/"
    bucket = service["EvidenceBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    (policy,) = service["TaskRole"]["Properties"]["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["ReadWriteEvidence"]["Action"] == ["s3:PutObject", "s3:GetObject"]
    assert statements["ReadWriteEvidence"]["Resource"] == {"Fn::Sub": "${EvidenceBucket.Arn}/proof-of-delivery/*"}
    assert "s3:DeleteObject" not in str(policy)


# --- the build stage's wheel slimming ---------------------------------------------------------------------------

def _slim_wheels_module():
    spec = importlib.util.spec_from_file_location("slim_wheels", ROOT / "deploy" / "slim_wheels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slim_wheels_keeps_the_aws_models_the_app_calls_and_writes_a_true_record(tmp_path):
    slim_wheels = _slim_wheels_module()
    members = {
        "botocore/__init__.py": b"",
        "botocore/data/endpoints.json": b"{}",
        "botocore/data/s3/2006-03-01/service-2.json.gz": b"s3",
        "botocore/data/sns/2010-03-31/service-2.json.gz": b"sns",
        "botocore/data/ec2/2016-11-15/service-2.json.gz": b"ec2" * 1000,
        "boto3/data/dynamodb/2012-08-10/resources-1.json": b"{}",
        "boto3/data/s3/2006-03-01/resources-1.json": b"{}",
        "botocore/tests/test_client.py": b"assert True",
        "botocore/testing.py": b"",  # a module named like a test directory is code
        "babel/locale-data/root.dat": b"root",
        "babel/locale-data/en_IN.dat": b"en_IN",
        "babel/locale-data/hi.dat": b"hi",
        "babel/locale-data/fr.dat": b"fr" * 1000,
        "babel/locale-data/en_AU.dat": b"en_AU",
        "PIL/_avif.cpython-311-x86_64-linux-gnu.so": b"avif",
        "pillow.libs/libavif-c6062d5f.so.16.4.2": b"avif" * 1000,
        "reportlab/fonts/Vera.ttf": b"vera",
        "botocore-1.0.dist-info/METADATA": b"Name: botocore",
        "botocore-1.0.dist-info/RECORD": b"stale",
    }
    wheel = tmp_path / "botocore-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    slim_wheels.slim_wheel(wheel, strip=None)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record = list(csv.reader(io.StringIO(archive.read("botocore-1.0.dist-info/RECORD").decode())))
        contents = {name: archive.read(name) for name in names}
    assert names == {"botocore/__init__.py", "botocore/data/endpoints.json",
                     "botocore/data/s3/2006-03-01/service-2.json.gz", "botocore/data/sns/2010-03-31/service-2.json.gz",
                     "boto3/data/s3/2006-03-01/resources-1.json", "botocore/testing.py",
                     "babel/locale-data/root.dat", "babel/locale-data/en_IN.dat", "babel/locale-data/hi.dat",
                     "botocore-1.0.dist-info/METADATA", "botocore-1.0.dist-info/RECORD"}
    assert {row[0] for row in record} == names
    for name, digest, size in record:
        if name.endswith("RECORD"):
            assert (digest, size) == ("", "")
            continue
        expected = base64.urlsafe_b64encode(hashlib.sha256(contents[name]).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(contents[name]))


def test_slim_wheels_leaves_the_libraries_auditwheel_vendored_unstripped():
    """patchelf rewrote them; strip left numpy's OpenBLAS unloadable ("not page-aligned")."""
    slim_wheels = _slim_wheels_module()
    assert slim_wheels.is_vendored("numpy.libs/libscipy_openblas64_-32a4b2a6.so")
    assert slim_wheels.is_vendored("pyvroom.libs/libglpk-4190a3ba.so.40.3.1")
    assert not slim_wheels.is_vendored("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so")
    assert not slim_wheels.is_vendored("shapely/lib.cpython-311-x86_64-linux-gnu.so")
