"""Make the image's wheels smaller before the runtime stage installs them (run in the Dockerfile's build stage).

    python slim_wheels.py /wheels

Each wheel in the directory is rewritten in place, with a RECORD that matches what is left:
- botocore and boto3 keep the models of the AWS services the app calls only (AWS_SERVICES); the files shared by
  every service (endpoints, partitions, retry rules) stay. The other ~450 service models are most of botocore.
- the packages' own test suites (`tests/`, `test/` directories) are left out.
- shared libraries lose their debug information (`strip --strip-debug`, when `strip` is installed): many wheels
  ship it, and it is dead weight in a container (the code and its symbols are untouched). Not the libraries
  auditwheel vendored into `<package>.libs/` (see is_vendored).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

# S3 (the file store), SNS (text messages) and STS (credentials from an assumed role, if a deployment uses one).
AWS_SERVICES = frozenset({"s3", "sns", "sts"})
SERVICE_MODEL_DIRS = ("botocore/data/", "boto3/data/")
TEST_DIRS = frozenset({"tests", "test"})
# Babel's CLDR data is one file per locale (35 MB for all of them); the app speaks English and Hindi, and Babel
# reads a locale's parents (en_IN -> en_001 -> en -> root) and its own plural and date data.
BABEL_LOCALE_DATA = "babel/locale-data/"
BABEL_LOCALES = ("root.", "en.", "en_001.", "en_IN.", "hi.", "hi_")
# Never loaded by the app: Pillow's AVIF codec (5 MB; the app reads and writes JPEG and PNG only, and Pillow
# treats a missing codec as unsupported) and ReportLab's font files (labels use the standard PDF fonts, whose
# metrics are built in and which are never embedded).
UNUSED_PREFIXES = ("PIL/_avif.", "pillow.libs/libavif-", "reportlab/fonts/")


def keep(name: str) -> bool:
    """Whether a wheel member stays."""
    if name.startswith(UNUSED_PREFIXES):
        return False
    if name.startswith(BABEL_LOCALE_DATA):
        return PurePosixPath(name).name.startswith(BABEL_LOCALES)
    for prefix in SERVICE_MODEL_DIRS:
        if name.startswith(prefix):
            service, _, rest = name[len(prefix):].partition("/")
            return not rest or service in AWS_SERVICES  # files directly in data/ are shared by every service
    return not TEST_DIRS.intersection(PurePosixPath(name).parts[:-1])


def is_shared_library(name: str) -> bool:
    base = PurePosixPath(name).name
    return base.endswith(".so") or ".so." in base


def is_vendored(name: str) -> bool:
    """A library auditwheel copied into the wheel (`<package>.libs/`): patchelf rewrote it, and strip can leave its
    load segments misaligned (numpy's OpenBLAS then fails to load: "ELF load command address/offset not
    page-aligned"). They are left as they are."""
    return PurePosixPath(name).parts[0].endswith(".libs")


def strip_debug(data: bytes, strip: str) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".so") as library:
        library.write(data)
        library.flush()
        result = subprocess.run([strip, "--strip-debug", library.name],  # noqa: S603 - our own temporary file
                                capture_output=True, timeout=120)
        if result.returncode != 0:  # not an ELF file strip understands: keep it as it is
            return data
        return Path(library.name).read_bytes()


def record_row(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def slim_wheel(wheel: Path, strip: str | None) -> tuple[int, int]:
    """Rewrite one wheel; returns its size before and after."""
    before = wheel.stat().st_size
    with zipfile.ZipFile(wheel) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    record_name = next(info.filename for info, _ in members if info.filename.endswith(".dist-info/RECORD"))
    kept, rows = [], []
    for info, data in members:
        if info.filename == record_name or not keep(info.filename):
            continue
        if strip and is_shared_library(info.filename) and not is_vendored(info.filename):
            data = strip_debug(data, strip)
        kept.append((info, data))
        rows.append(record_row(info.filename, data))
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows([*rows, [record_name, "", ""]])
    partial = wheel.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in kept:
            target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
        target.writestr(record_name, record.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    partial.replace(wheel)
    return before, wheel.stat().st_size


def main(directory: str) -> None:
    strip = shutil.which("strip")
    total_before = total_after = 0
    for wheel in sorted(Path(directory).glob("*.whl")):
        before, after = slim_wheel(wheel, strip)
        total_before, total_after = total_before + before, total_after + after
    print(f"wheels {total_before / 1e6:.1f} MB -> {total_after / 1e6:.1f} MB"
          f"{'' if strip else ' (no strip installed: debug information kept)'}")


if __name__ == "__main__":
    main(sys.argv[1])
