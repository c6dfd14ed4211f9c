"""The README's shell examples, run as written: every ```sh, ```bash and ```console block of README.md, in order,
with bash against a real Gunicorn (started as run-local.sh starts it: `flask deploy`, then gunicorn.conf.py) on a
free 127.0.0.1 port and a temporary SQLite database.

The blocks run in a temporary directory laid out like a checkout (copies of the code, `.venv` linked), so their
cookie jar, CSV files, PDFs and the SQLite file never land in the repository. Variables and functions a block sets
carry over to the next ones, as in one terminal. A block is left out only when the README marks it, on the line
before it, with `<!-- readme-test: skip (why) -->`: deployment and the test commands themselves."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import log_privacy

# Runs every shell block of the README: 26 s.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(sh|bash|console)[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->\s*$")
# What a skipped block may be: deployment, or the test commands themselves. Anything else must run.
SKIPPABLE = re.compile(r"\./run-local\.sh|\bpytest\b|\baws\b|\bdocker\b|\bpodman\b|apt-get")
COPIED = ("app", "migrations", "translations", "babel.cfg", "gunicorn.conf.py")
METRICS_TOKEN = secrets.token_urlsafe(24)


@dataclass
class ReadmeBlock:
    line: int
    language: str
    code: str
    skip_reason: str | None

    def script(self) -> str:
        if self.language != "console":
            return self.code
        # A console block is a transcript: "$ command" lines (continued by a trailing backslash), then output.
        commands, continued = [], False
        for text in self.code.splitlines():
            if text.startswith("$ ") or continued:
                commands.append(text[2:] if text.startswith("$ ") and not continued else text)
                continued = text.endswith("\\")
        return "\n".join(commands) + "\n"


def readme_blocks() -> list[ReadmeBlock]:
    text = README.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append(ReadmeBlock(text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2),
                                  skip.group("why").strip() if skip else None))
    return blocks


def test_readme_blocks_are_found_and_few_are_skipped():
    blocks = readme_blocks()
    assert len(blocks) >= 10
    skipped = [block for block in blocks if block.skip_reason]
    assert len(skipped) <= 4, [(b.line, b.skip_reason) for b in skipped]
    for block in skipped:
        assert SKIPPABLE.search(block.code), f"README.md:{block.line} is skipped but is not a deployment or " \
                                             f"test command: {block.code}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def checkout_copy(directory: Path) -> None:
    """What the README's commands expect in their working directory: the code, and `.venv`."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy2(source, directory / name)
    (directory / ".venv").symlink_to(ROOT / ".venv")


def base_env(directory: Path, port: int) -> dict[str, str]:
    """As run-local.sh sets up a laptop: development mode, a secret, the port; no PUBLIC_BASE_URL (links must
    follow the port). Nothing from the caller's Waybill settings leaks in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CI", "TEST_DATABASE_URL")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update({
        "WAYBILL_ENV": "development", "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{directory / 'instance' / 'waybill.db'}", "PORT": str(port),
        "WEB_CONCURRENCY": "1", "METRICS_TOKEN": METRICS_TOKEN, "MAIL_BACKEND": "console", "SMS_BACKEND": "console",
        "STORAGE_DIR": str(directory / "instance" / "uploads"), "LOG_LEVEL": "WARNING", "ACCESS_LOG": "off",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def start_app(directory: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    admin_password = secrets.token_urlsafe(12)  # run-local.sh: generated, kept in instance/.admin-password
    (directory / "instance").mkdir()
    (directory / "instance" / ".admin-password").write_text(admin_password + "\n")
    deploy = subprocess.run([".venv/bin/flask", "--app", "app", "deploy"], cwd=directory, capture_output=True,
                            text=True, timeout=120, env={**env, "ADMIN_USERNAME": "admin",
                                                         "ADMIN_PASSWORD": admin_password})
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    log_path = directory / "gunicorn.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([".venv/bin/gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                    "app:create_app()"], cwd=directory, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    log_privacy.watch_file(log_path, "gunicorn (README examples)")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    pytest.fail(f"gunicorn did not get ready in 30 s:\n{log_path.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# Run a block in a fresh bash that first takes over what the earlier blocks set, and afterwards keeps what this
# one set (variables and functions, not bash's own) for the next.
WRAPPER = """\
__baseline=$(compgen -v | tr '\\n' ' ')
[ -f "$README_STATE" ] && source "$README_STATE"
set -euo pipefail
source "$README_BLOCK"
set +u
{
  for __name in $(compgen -v); do
    case " $__baseline __baseline __name " in *" $__name "*) ;; *) declare -p "$__name" ;; esac
  done
  declare -f
} > "$README_STATE.next" 2>/dev/null
mv "$README_STATE.next" "$README_STATE"
"""


def test_every_readme_shell_block_runs_as_written(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    work = tmp_path / "checkout"
    work.mkdir()
    checkout_copy(work)
    port = free_port()
    env = base_env(work, port)
    process = start_app(work, env, port)
    outputs: dict[int, str] = {}
    try:
        block_env = {**env, "BASE": f"http://localhost:{port}", "README_STATE": str(tmp_path / "state.sh")}
        for number, block in enumerate(readme_blocks()):
            if block.skip_reason:
                continue
            script = tmp_path / f"block-{number}.sh"
            script.write_text(block.script())
            result = subprocess.run(["bash", "-c", WRAPPER], cwd=work, env={**block_env, "README_BLOCK": str(script)},
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (f"README.md:{block.line} exited {result.returncode}\n{block.code}\n"
                                            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
            outputs[block.line] = result.stdout
    finally:
        stop(process)

    everything = "\n".join(outputs.values())
    tracking_id = re.search(r"^([0-9A-F]{8})$", everything, flags=re.MULTILINE).group(1)
    # Booked, tracked, full details shown, found by mobile, updated, then refused a forbidden move.
    assert f'"tracking_url":"http://localhost:{port}/track/{tracking_id}"' in everything  # links follow PORT
    assert '"sender_name":"Asha Rao"' in everything
    assert '"status":"Picked Up"' in everything and '"location":"Kakinada"' in everything
    assert 'allowed next statuses: In Transit, On Hold."}\nHTTP 409\n' in everything
    assert '{"logged_out":true}' in everything
    assert "\nHTTP 200 application/pdf\n" in everything and "3.1.0" in everything  # integrator API
    assert '"created":2' in everything.replace(" ", "")  # the CSV import
    assert '"status":"Delivered"' in everything  # proof of delivery
    assert '"accepted":2' in everything.replace(" ", "") and '"reason":"unknown_id"' in everything  # scan
    assert re.search(r"^waybill_outbox_\w+", everything, flags=re.MULTILINE)  # metrics, with the token
    leftovers = [p.name for p in ROOT.iterdir() if p.name in {"jar", "bookings.csv"} or p.suffix == ".pdf"]
    assert leftovers == []
