"""Layers point down only (design rule 10): services import neither the outbox worker nor a blueprint."""
import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
BLUEPRINTS = ("app.auth", "app.shipments", "app.tracking", "app.admin", "app.notifications", "app.health",
              "app.api")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_services_import_no_worker_and_no_blueprint():
    offences = {}
    for path in sorted((APP / "services").glob("*.py")):
        bad = {name for name in imported_modules(path)
               if name == "app.notifier" or name.startswith("app.notifier.")
               or any(name == bp or name.startswith(bp + ".") for bp in BLUEPRINTS)}
        if bad:
            offences[path.name] = sorted(bad)
    assert offences == {}
