"""The deployment files pass their linters: hadolint (Dockerfile), check-jsonschema with our buildspec schema,
cfn-lint (every CloudFormation template) — no errors and no warnings."""
from __future__ import annotations

import subprocess

from tests.deploy.conftest import ROOT, tool

TEMPLATES = sorted((ROOT / "deploy").glob("*.yml"))
SCHEMA = ROOT / "schemas" / "buildspec.schema.json"


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_dockerfile_passes_hadolint_without_warnings():
    result = run(tool("hadolint"), "--failure-threshold", "style", "Dockerfile")
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_there_are_templates_to_lint():
    assert {path.name for path in TEMPLATES} >= {"ecr.yml", "service.yml", "pipeline.yml"}


def test_every_cloudformation_template_passes_cfn_lint_without_warnings():
    # One run for all templates: cfn-lint's start-up is most of its time. Its output names the file.
    result = run(tool("cfn-lint"), "--", *(str(path.relative_to(ROOT)) for path in TEMPLATES))
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_buildspec_schema_is_a_valid_json_schema():
    result = run(tool("check-jsonschema"), "--check-metaschema", str(SCHEMA))
    assert result.returncode == 0, result.stdout + result.stderr


def test_buildspec_matches_the_schema():
    result = run(tool("check-jsonschema"), "--schemafile", str(SCHEMA), "buildspec.yml")
    assert result.returncode == 0, result.stdout + result.stderr


TYPOS = {
    "phase-name": ("  pre_build:\n", "  prebuild:\n", "'prebuild' was unexpected"),
    "phase-dash": ("  post_build:\n", "  post-build:\n", "'post-build' was unexpected"),
    "commands-key": ("\n    commands:\n      - docker build", "\n    comands:\n      - docker build",
                     "'comands' was unexpected"),
    "artifacts-key": ("\nartifacts:\n", "\nartifact:\n", "'artifact' was unexpected"),
    "version": ("version: 0.2", "version: 0.1", "0.1 is not one of"),
    # `- echo Image tag: x` is a mapping in YAML, which CodeBuild would only reject when the build runs.
    "command-as-mapping": ('- echo "Image tag $IMAGE_TAG"', "- echo Image tag: $IMAGE_TAG",
                           "is not of type 'string'"),
}


def test_typos_in_the_buildspec_fail_the_schema(tmp_path):
    text = (ROOT / "buildspec.yml").read_text()
    variants = []
    for name, (old, new, _complaint) in TYPOS.items():
        assert old in text, name
        variant = tmp_path / f"{name}.yml"
        variant.write_text(text.replace(old, new, 1))
        variants.append(str(variant))
    result = run(tool("check-jsonschema"), "--schemafile", str(SCHEMA), *variants)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    for name, (_old, _new, complaint) in TYPOS.items():
        lines = [line for line in report.splitlines() if f"{name}.yml" in line]
        assert any(complaint in line for line in lines), (name, report)
