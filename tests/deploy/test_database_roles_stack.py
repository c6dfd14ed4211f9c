"""The stack's two database roles: the release task migrates as the tables' owner, the serving tasks connect as
the app's own role and cannot even read the owner's URL (see app/db/roles.py and tests/test_database_roles.py)."""
from __future__ import annotations

import pytest
from cfnlint.decode import decode

from tests.deploy.conftest import ROOT


@pytest.fixture(scope="module")
def template() -> dict:
    template, matches = decode(str(ROOT / "deploy" / "service.yml"))
    assert not matches
    return template


def secrets_of(definition: dict) -> dict:
    return {item["Name"]: item["ValueFrom"] for item in definition["Secrets"] if "Name" in item}


def test_the_app_url_and_the_owner_url_are_two_secrets_of_two_roles(template):
    resources = template["Resources"]
    app_url = str(resources["DatabaseUrl"]["Properties"]["SecretString"])
    owner_url = str(resources["MigrationDatabaseUrl"]["Properties"]["SecretString"])
    assert "'Ref': 'DatabaseAppCredentials'" in app_url and "DatabaseCredentials'" not in app_url.replace(
        "DatabaseAppCredentials'", "")
    assert "'Ref': 'DatabaseCredentials'" in owner_url
    app_role = resources["DatabaseAppCredentials"]["Properties"]["GenerateSecretString"]
    assert app_role["SecretStringTemplate"] == '{"username": "waybill_app"}'
    master = resources["Database"]["Properties"]["MasterUsername"]
    assert "DatabaseCredentials" in str(master)  # the owner is the master user


def test_only_the_release_task_gets_the_owner_url(template):
    resources = template["Resources"]
    (migrate,) = resources["MigrateTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert migrate["Command"] == ["flask", "--app", "app", "deploy"]
    secrets = secrets_of(migrate)
    assert secrets["MIGRATION_DATABASE_URL"] == {"Ref": "MigrationDatabaseUrl"}
    assert secrets["DATABASE_URL"] == {"Ref": "DatabaseUrl"}
    for name in ("TaskDefinition", "NotifierTaskDefinition"):
        for container in resources[name]["Properties"]["ContainerDefinitions"]:
            assert "MIGRATION_DATABASE_URL" not in secrets_of(container), name
            assert secrets_of(container)["DATABASE_URL"] == {"Ref": "DatabaseUrl"}, name
            assert "MigrationDatabaseUrl" not in str(container), name
    serving_role = str(resources["TaskExecutionRole"]["Properties"]["Policies"])
    assert "MigrationDatabaseUrl" not in serving_role
    release_role = str(resources["MigrateTaskExecutionRole"]["Properties"]["Policies"])
    assert "MigrationDatabaseUrl" in release_role
    task_definition = resources["MigrateTaskDefinition"]["Properties"]
    assert task_definition["ExecutionRoleArn"] == {"Fn::GetAtt": ["MigrateTaskExecutionRole", "Arn"]}
    assert "TaskRoleArn" not in task_definition  # no AWS calls: no task role


def test_the_migrate_command_runs_the_release_task_definition(template):
    command = str(template["Outputs"]["MigrateCommand"]["Value"])
    assert "--task-definition ${AWS::StackName}-migrate" in command
    assert '"name":"migrate"' in command and '"flask","--app","app","deploy"' in command
