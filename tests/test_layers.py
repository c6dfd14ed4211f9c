"""Layers point down only (design rule 10): services import neither the outbox worker, the job runner, a blueprint
nor app.web; app/domain is pure (standard library only); and app/ keeps only its wiring loose at the top
(STYLE.md, "Our layout"): everything else lives in a package named for what it is about."""
import ast
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
BLUEPRINTS = ("app.auth", "app.shipments", "app.tracking", "app.admin", "app.notifications", "app.health",
              "app.api")
LOOSE_AT_THE_TOP = {"__init__.py", "config.py", "extensions.py", "errors.py", "cli.py"}
LAYOUT_PACKAGES = ("domain", "db", "web", "i18n", "observability", "services", "services/shipments",
                   "services/outbox", "services/staff", "services/field", "services/planning", "jobs")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_services_import_no_worker_no_job_runner_and_no_blueprint():
    offences = {}
    for path in sorted((APP / "services").rglob("*.py")):
        bad = {name for name in imported_modules(path)
               if within(name, "app.notifier") or within(name, "app.jobs")
               or any(within(name, bp) for bp in BLUEPRINTS)}
        if bad:
            offences[str(path.relative_to(APP))] = sorted(bad)
    assert offences == {}


def test_services_import_nothing_from_web():
    """What every request shares (forms, serializers, templating, request hooks) sits above the services."""
    offences = {}
    for path in sorted((APP / "services").rglob("*.py")):
        bad = {name for name in imported_modules(path) if within(name, "app.web")}
        if bad:
            offences[str(path.relative_to(APP))] = sorted(bad)
    assert offences == {}


def test_domain_imports_only_the_standard_library():
    offences = {}
    for path in sorted((APP / "domain").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        bad = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue  # a relative import stays inside app.domain
            bad.update(name for name in modules
                       if name.split(".")[0] not in sys.stdlib_module_names and not within(name, "app.domain"))
        if bad:
            offences[str(path.relative_to(APP))] = sorted(bad)
    assert offences == {}


def test_only_the_wiring_is_loose_at_the_top_of_app():
    loose = {path.name for path in APP.glob("*.py")}
    assert loose - LOOSE_AT_THE_TOP == set(), "put new modules in the package they are about (STYLE.md)"
    assert loose >= LOOSE_AT_THE_TOP


def test_services_are_packages_by_domain():
    """app/services holds one package per domain (shipments, outbox, staff, field, planning, ndr, operations), no
    loose modules."""
    loose = {path.name for path in (APP / "services").glob("*.py")}
    assert loose == {"__init__.py"}, "put a service in the package of the domain it is about"
    packages = {path.parent.name for path in (APP / "services").glob("*/__init__.py")}
    assert packages == {"shipments", "outbox", "staff", "field", "planning", "ndr", "operations"}


def test_the_layout_packages_say_what_lives_in_them():
    for init in sorted(APP / package / "__init__.py" for package in LAYOUT_PACKAGES):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring, f"{init.relative_to(APP.parent)} needs a docstring saying what lives there"


def test_app_package_binds_no_name_of_its_own_subpackages():
    """Importing app.db binds the subpackage as the attribute `db` of the app package: a module-level `db` (or
    any name of a subpackage or module of app) in app/__init__.py would silently be replaced by it."""
    tree = ast.parse((APP / "__init__.py").read_text())
    bound = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound.update(target.id for target in node.targets if isinstance(target, ast.Name))
    own = {path.stem for path in APP.glob("*.py")} | {path.parent.name for path in APP.glob("*/__init__.py")}
    assert bound & own == set()


AUDIT_WRITERS = frozenset({"record_audit", "record_audits", "AuditEntry"})


def _called_name(function: ast.expr) -> str | None:
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def test_only_the_services_write_audit_rows():
    """Every staff action is audited (design rule 8) by the service that makes the change, in its transaction:
    so a change is audited once whichever door it came through (a page, JSON, /api/v1, a command). Blueprints,
    app/web and the CLI call the service; none of them calls record_audit or builds an AuditEntry. The CLI is an
    actor like any other and gets no exception: its commands go through the same services."""
    offences = {}
    for path in sorted(APP.rglob("*.py")):
        if path.is_relative_to(APP / "services") or path == APP / "models" / "audit_entry.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        found = {name for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and (name := _called_name(node.func)) in AUDIT_WRITERS}
        found.update(alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     for alias in node.names if alias.name in AUDIT_WRITERS - {"AuditEntry"})
        if found:
            offences[str(path.relative_to(APP))] = sorted(found)
    assert offences == {}


def test_proofs_of_delivery_enter_only_through_the_status_change_core():
    """A proof is sent as the raw fields (and files) of a status change; the core checks and records it, so a
    page, JSON, /api/v1 and scan mode cannot check it differently or record it apart from its event."""
    core = {APP / "services" / "shipments" / "status_changes.py", APP / "services" / "shipments" / "proofs.py"}
    offences = {}
    for path in sorted(APP.rglob("*.py")):
        if path in core:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        found = {name for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and (name := _called_name(node.func)) in {"check_proof", "record_proofs"}}
        if found:
            offences[str(path.relative_to(APP))] = sorted(found)
    assert offences == {}


def test_the_order_of_a_timeline_is_stated_once():
    """Events are ordered by time, then by id, in one place (app.services.shipments.queries: events_in_order,
    OLDEST_FIRST, NEWEST_FIRST): no other module sorts events by their time itself."""
    home = APP / "services" / "shipments" / "queries.py"
    offences = {}
    for path in sorted(APP.rglob("*.py")):
        if path == home:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node.func) in {"order_by", "over"}:
                arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
                if any(isinstance(inner, ast.Attribute) and inner.attr == "occurred_at"
                       for argument in arguments for inner in ast.walk(argument)):
                    offences.setdefault(str(path.relative_to(APP)), []).append(node.lineno)
    assert offences == {}


def test_request_bodies_are_read_by_the_forms_alone():
    """A view never parses a JSON body or a form post itself: app/web/forms.py reads either into a RequestForm and
    turns its errors into `fields` (field_errors). The API's pydantic schemas read JSON through app/api/contract.py,
    after the same text checks (json_object_body)."""
    readers = {APP / "web" / "forms.py": set(), APP / "api" / "contract.py": {"json_object_body"}}
    offences = {}
    for path in sorted(APP.rglob("*.py")):
        allowed = readers.get(path)
        if allowed == set():
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        found = {name for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and (name := _called_name(node.func)) in {"get_json", "json_object_body", "getlist"}}
        found.update(f"{name}()" for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and isinstance(node.func, ast.Attribute) and (name := node.func.attr) == "field_errors")
        found -= allowed or set()
        if found:
            offences[str(path.relative_to(APP))] = sorted(found)
    assert offences == {}


def test_each_blueprint_package_builds_its_blueprint_and_create_app_imports_nothing_for_its_side_effects():
    """create_app registers the blueprints each package builds (app/<name>/__init__.py, which imports its own
    views); no module is imported into create_app just for the routes it adds."""
    assert "noqa: F401" not in (APP / "__init__.py").read_text()
    for package in BLUEPRINTS:
        init = APP / package.removeprefix("app.") / "__init__.py"
        tree = ast.parse(init.read_text())
        builds = [node for node in tree.body if isinstance(node, ast.Assign)
                  and any(isinstance(target, ast.Name) and target.id == "bp" for target in node.targets)]
        assert builds, f"{init.relative_to(APP.parent)} builds no blueprint `bp`"
        assert ast.get_docstring(tree), f"{init.relative_to(APP.parent)} needs a docstring"
    for path in APP.rglob("*.py"):
        if path.name != "__init__.py":
            assert "Blueprint(" not in path.read_text().replace("ApiBlueprint(", ""), \
                f"{path.relative_to(APP.parent)}: blueprints are built in their package's __init__.py"
