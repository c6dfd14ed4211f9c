"""The README's API examples, run as written: the code block is taken from the README and run with bash and
curl against the app served over real HTTP, with the admin's credentials where the README says they come from."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Shipment

README = Path(__file__).resolve().parent.parent / "README.md"
ADMIN = ("admin", "readme-admin-password-1")


def api_examples() -> str:
    """The bash block of the README's "HTTP API" section (the one that sets BASE)."""
    section = README.read_text().split("## HTTP API", 1)[1]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    [block] = [b for b in blocks if "BASE=" in b]
    return block


def test_the_readme_api_examples_run_as_written(live_server, make_user, app, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    make_user(*ADMIN, role="admin")
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / ".admin-password").write_text(ADMIN[1] + "\n")  # where run-local.sh keeps it
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADMIN_")}
    env["BASE"] = live_server.url
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", api_examples()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    tracking_id = output.splitlines()[0]
    assert re.fullmatch(r"[0-9A-F]{8}", tracking_id), output
    assert output.count(f'"tracking_id":"{tracking_id}"') >= 3, output  # tracked, found by mobile, updated
    assert '"status":"Picked Up"' in output and '"location":"Kakinada"' in output  # updated as the admin
    assert 'allowed next statuses: In Transit, On Hold."}\nHTTP 409\n' in output, output
    assert output.rstrip().endswith('{"logged_out":true}'), output
    with app.app_context():
        assert db.session.scalars(select(Shipment.status).where(Shipment.tracking_id == tracking_id)).one() \
            == "Picked Up"
