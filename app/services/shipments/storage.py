"""Where uploaded evidence (proof-of-delivery signatures and photos) is kept: one small interface, two backends.

- `filesystem` (the default): files under STORAGE_DIR (instance/uploads), for a laptop or a single host.
- `s3`: an Amazon S3 bucket (S3_BUCKET, optional S3_PREFIX) through boto3, with the task role's credentials;
  S3_ENDPOINT_URL points at an S3-compatible server instead (the tests use a local one).

Rules: keys are made by the app, never taken from a request (`a-z0-9`, `-`, `_`, `.` and `/` only, no `..`);
objects are written once and never overwritten.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")


class StorageError(Exception):
    """The store could not be reached or refused the operation."""


class StoredFileMissing(StorageError):
    pass


class FileStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key


@dataclass
class LocalFileStore:
    root: Path

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: written once, never overwritten; a half-written file is never left under the final name.
            partial = path.with_name(path.name + ".part")
            with open(partial, "xb") as handle:
                handle.write(data)
            os.link(partial, path)
            partial.unlink()
        except FileExistsError as exc:
            raise StorageError(f"{key} exists already") from exc
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StoredFileMissing(key) from exc


@dataclass
class S3FileStore:
    bucket: str
    prefix: str
    client: object  # a boto3 S3 client

    def _key(self, key: str) -> str:
        return f"{self.prefix}{check_key(key)}"

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type,
                                   ServerSideEncryption="AES256", IfNoneMatch="*")
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not store {key} in S3: {_reason(exc)}") from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoredFileMissing(key) from exc
            raise StorageError(f"could not read {key} from S3: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key} from S3: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def open_store(config) -> FileStore:
    """The store the configuration names (STORAGE_BACKEND: filesystem | s3)."""
    backend = config["STORAGE_BACKEND"]
    if backend == "filesystem":
        return LocalFileStore(Path(config["STORAGE_DIR"]))
    if backend == "s3":
        import boto3
        from botocore.config import Config as BotoConfig

        client = boto3.client("s3", region_name=config["AWS_REGION"], endpoint_url=config["S3_ENDPOINT_URL"],
                              config=BotoConfig(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3}))
        prefix = config["S3_PREFIX"].strip("/")
        return S3FileStore(config["S3_BUCKET"], f"{prefix}/" if prefix else "", client)
    raise ValueError(f"STORAGE_BACKEND must be filesystem or s3, not {backend!r}")
