"""Podman for the container tests: a containers.conf that works on a CI machine, and a stand-in for the
Dockerfile's base image.

No container registry is reachable from CI, so `public.ecr.aws/docker/library/python:3.11-slim` is replaced by
what it provides that the Dockerfile uses: Debian bookworm with Python 3.11, `python` and `pip` on PATH, pip able to
install system-wide, `groupadd`/`useradd`, CA certificates. The root filesystem is made once with debootstrap from
the Debian mirror apt uses on this machine, kept as a tarball in the user's cache, and imported under the base
image's exact name, so the Dockerfile is built as it is.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Bump when the recipe changes: a new name makes a new tarball and image.
BASE_RECIPE = "bookworm-python3.11-v1"
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "waybill" / "container"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
FALLBACK_MIRROR = "http://deb.debian.org/debian"

# What a CI machine (itself a container, no systemd, a low default ulimit) needs from podman.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

# Matches python:3.11-slim's image configuration (what `docker inspect` shows of it) that a build can see.
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
    f"LABEL waybill.stand-in={BASE_RECIPE}",
)


class PodmanUnavailable(Exception):
    """podman is missing or cannot run a container on this machine."""


def podman_env() -> dict[str, str]:
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        temporary = conf.with_suffix(f".{os.getpid()}")
        temporary.write_text(CONTAINERS_CONF)
        temporary.replace(conf)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    binary = shutil.which("podman")
    if binary is None:
        raise PodmanUnavailable("podman is not installed (apt-get install podman runc debootstrap)")
    result = subprocess.run([binary, *args], env=podman_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited with {result.returncode}:\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def check_podman_works() -> None:
    """Raise PodmanUnavailable unless podman and its runtime are installed and podman can start here."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            raise PodmanUnavailable(f"{tool} is not installed (apt-get install podman runc debootstrap)")
    result = podman("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}", check=False)
    if result.returncode != 0:
        raise PodmanUnavailable(f"podman info failed: {result.stderr.strip()[-800:]}")


def check_container_runs(image: str) -> None:
    """Raise PodmanUnavailable unless a container of `image` runs (the cheapest proof that podman works here)."""
    result = podman("run", "--rm", "--network", "host", image, "python", "-c", "print('ok')", check=False)
    if result.returncode != 0 or result.stdout.strip() != "ok":
        raise PodmanUnavailable(f"podman cannot run a container: {result.stderr.strip()[-800:]}")


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The bookworm mirror apt is configured with on this machine (deb822 .sources or one-line .list files)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if uris and suites and "bookworm" in suites.group(1).split():
                return uris.group(1).rstrip("/")
        for line in text.splitlines():
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if match:
                return match.group(1).rstrip("/")
    return FALLBACK_MIRROR


@contextmanager
def cache_lock() -> Iterator[None]:
    """One test run at a time makes the base (several engineers' runs share the machine)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def finish_rootfs(root: Path) -> None:
    """Turn a debootstrapped Debian into what python:3.11-slim offers a Dockerfile, and as small: `python` and
    `pip` in /usr/local/bin, system-wide pip installs allowed (no EXTERNALLY-MANAGED), no apt lists or package
    cache, no documentation, no byte-code (the official image deletes its *.pyc too)."""
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    local_bin = root / "usr/local/bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
        link = local_bin / name
        if not link.is_symlink():
            link.symlink_to(target)
    for directory in ("var/lib/apt/lists", "var/cache/apt", "var/log", "usr/share/doc", "usr/share/man",
                      "usr/share/info", "usr/share/locale", "tmp"):
        path = root / directory
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for cache in (root / "usr/lib").glob("python3*/**/__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def build_base_tarball(tarball: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
    try:
        root = work / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm", str(root),
             debian_mirror()], capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        finish_rootfs(root)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                        "-C", str(root), "-cf", str(partial), "."], check=True, timeout=600)
        partial.replace(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_base_image(name: str) -> None:
    """`name` exists in podman's storage: imported from the cached tarball, made first if missing."""
    with cache_lock():
        found = podman("image", "inspect", "--format", '{{index .Config.Labels "waybill.stand-in"}}', name,
                       check=False)
        # The real image (no label) is better still; a stand-in from an older recipe is replaced.
        if found.returncode == 0 and found.stdout.strip() in ("", "<no value>", BASE_RECIPE):
            return
        tarball = CACHE / f"{BASE_RECIPE}.tar"
        if not tarball.exists():
            if shutil.which("debootstrap") is None:
                raise PodmanUnavailable("debootstrap is not installed (apt-get install debootstrap)")
            build_base_tarball(tarball)
        changes = [arg for change in IMAGE_CHANGES for arg in ("--change", change)]
        podman("import", *changes, str(tarball), name, timeout=600)
