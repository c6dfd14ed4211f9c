"""Static files by content: every file under app/static is also served under a fingerprinted name,
`css/waybill.css` → `css/waybill.<12 hex of its SHA-256>.css`, which browsers may keep for a year unasked.

Rules:
- `url_for('static', filename=...)` names the fingerprinted file whenever the file exists, so every page, the
  courier app's service worker (its precache list) and its manifest ask for the current content by name.
- A fingerprinted name is answered with `Cache-Control: public, max-age=31536000, immutable`: its content
  never changes under that name. The plain name is answered as before (revalidated on every use).
- A stylesheet's `url(...)` references to other static files are rewritten to their fingerprinted names (the
  fonts), and the stylesheet's own fingerprint is taken over the rewritten text, so a new font makes a new
  stylesheet name.
- A fingerprint that is not the current one (a page rendered by the previous release, during a rolling deploy)
  gets the current file under the plain name's caching: never `immutable`, so no cache keeps the wrong content
  for that name for a year, and the page still gets its styles. A name whose file does not exist is a 404.
- No static answer carries `Vary: Cookie` or sets a cookie: its content is the same for every visitor.
- A fingerprinted text file (the types app.web.compression compresses, over 1 KB) is compressed once per process
  at the highest levels (brotli 11, gzip 9) and kept in memory: a tenth smaller than per-request compression,
  and no compression work per request.
- The fingerprints are taken once per process, on first use (about 1.4 MB read); in debug mode again whenever
  a file changes.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import mimetypes
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import brotli
from flask import Flask, Response, request, send_file
from flask.sessions import SecureCookieSessionInterface

IMMUTABLE = "public, max-age=31536000, immutable"
ONE_YEAR = 31536000
FINGERPRINT_LENGTH = 12
EXTENSION_KEY = "waybill.static_manifest"
STATIC_ENCODINGS = ("br", "gzip")
# name.<fingerprint>.ext (or name.<fingerprint> for a file without an extension)
FINGERPRINTED = re.compile(rf"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{{{FINGERPRINT_LENGTH}}})(?P<suffix>\.[^./]+)?$")
CSS_URL = re.compile(r"""url\(\s*(?P<quote>['"]?)(?P<target>[^'")\s]+)(?P=quote)\s*\)""")


@dataclass(frozen=True)
class StaticFile:
    name: str  # its path under the static folder, "css/waybill.css"
    fingerprinted: str  # "css/waybill.0123456789ab.css"
    digest: str
    body: bytes | None  # the rewritten text of a stylesheet; None: the file as it is on disk
    size: int


@dataclass(frozen=True)
class StaticManifest:
    folder: Path
    files: dict[str, StaticFile]  # by name
    by_fingerprint: dict[str, StaticFile]  # by fingerprinted name
    stamps: tuple[tuple[str, int, int], ...]  # (name, mtime, size) of every file, to notice changes in debug mode
    packed: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (fingerprinted name, encoding) → body

    def url_name(self, name: str) -> str:
        """The name to link to: the fingerprinted one when the file exists."""
        found = self.files.get(name)
        return found.fingerprinted if found is not None else name

    def compressed(self, found: StaticFile, encoding: str) -> bytes:
        """The file's text compressed at the highest level, once per process (it never changes under its name):
        about a tenth smaller than per-request brotli, and no compression work per request."""
        key = (found.fingerprinted, encoding)
        packed = self.packed.get(key)
        if packed is None:
            content = found.body if found.body is not None else (self.folder / found.name).read_bytes()
            packed = brotli.compress(content, quality=11) if encoding == "br" else gzip.compress(content, 9, mtime=0)
            self.packed[key] = packed
        return packed

    def current_of(self, requested: str) -> str | None:
        """The plain name behind an outdated fingerprinted name, when that file exists."""
        match = FINGERPRINTED.match(requested)
        if match is None:
            return None
        name = match["stem"] + (match["suffix"] or "")
        return name if name in self.files else None


def fingerprinted_name(name: str, digest: str) -> str:
    directory, base = posixpath.split(name)
    stem, dot, suffix = base.rpartition(".")
    base = f"{stem}.{digest}.{suffix}" if dot and stem else f"{base}.{digest}"
    return posixpath.join(directory, base) if directory else base


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:FINGERPRINT_LENGTH]


def _stamps(folder: Path) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            status = path.stat()
            stamps.append((path.relative_to(folder).as_posix(), status.st_mtime_ns, status.st_size))
    return tuple(stamps)


def _rewrite_css(name: str, text: str, fingerprints: dict[str, str]) -> str:
    """url(...) references to static files, relative to the stylesheet, point at their fingerprinted names."""
    directory = posixpath.dirname(name)

    def replace(match: re.Match) -> str:
        target = match["target"]
        if target.startswith(("data:", "#", "/", "http:", "https:")) or "?" in target:
            return match.group(0)
        resolved = posixpath.normpath(posixpath.join(directory, target))
        if resolved not in fingerprints:
            return match.group(0)
        relative = posixpath.relpath(fingerprints[resolved], directory or ".")
        return f"url({match['quote']}{relative}{match['quote']})"

    return CSS_URL.sub(replace, text)


def build_manifest(folder: Path) -> StaticManifest:
    """Fingerprint every file under `folder`: the others first, then the stylesheets that name them."""
    stamps = _stamps(folder)
    names = [name for name, _mtime, _size in stamps]
    files: dict[str, StaticFile] = {}
    for name in names:
        if not name.endswith(".css"):
            content = (folder / name).read_bytes()
            digest = _digest(content)
            files[name] = StaticFile(name, fingerprinted_name(name, digest), digest, None, len(content))
    fingerprints = {name: found.fingerprinted for name, found in files.items()}
    for name in names:
        if name.endswith(".css"):
            body = _rewrite_css(name, (folder / name).read_text(encoding="utf-8"), fingerprints).encode("utf-8")
            digest = _digest(body)
            files[name] = StaticFile(name, fingerprinted_name(name, digest), digest, body, len(body))
    return StaticManifest(folder, files, {found.fingerprinted: found for found in files.values()}, stamps)


def static_manifest(app: Flask) -> StaticManifest:
    """This process's manifest (built on first use; in debug mode again when a file changed)."""
    manifest = app.extensions.get(EXTENSION_KEY)
    if manifest is None or (app.debug and manifest.stamps != _stamps(manifest.folder)):
        manifest = build_manifest(Path(app.static_folder))
        app.extensions[EXTENSION_KEY] = manifest
    return manifest


def _send_fingerprinted(app: Flask, manifest: StaticManifest, found: StaticFile) -> Response:
    """The file (or a stylesheet's rewritten text) with its fingerprint as ETag and the immutable caching;
    compressed text comes from the manifest's store (app.web.compression leaves an encoded answer alone)."""
    encoding = _encoding_for(app, found)
    if encoding is not None:
        response = Response(manifest.compressed(found, encoding), mimetype=_mimetype(found))
        response.headers["Content-Encoding"] = encoding
        response.vary.add("Accept-Encoding")
        response.set_etag(found.digest, weak=True)  # equivalent to the plain file's bytes, not the same
        response.make_conditional(request)
    else:
        source = io.BytesIO(found.body) if found.body is not None else Path(app.static_folder) / found.name
        response = send_file(source, etag=found.digest, max_age=ONE_YEAR, conditional=True,
                             download_name=posixpath.basename(found.name))
    response.headers["Cache-Control"] = IMMUTABLE
    return response


def _mimetype(found: StaticFile) -> str:
    return mimetypes.guess_type(found.name)[0] or "application/octet-stream"


def _encoding_for(app: Flask, found: StaticFile) -> str | None:
    """brotli or gzip, as the client prefers (brotli at equal preference), for text the app compresses."""
    if _mimetype(found) not in app.config.get("COMPRESS_MIMETYPES", ()) or \
            found.size < app.config.get("COMPRESS_MIN_SIZE", 1025):
        return None
    return request.accept_encodings.best_match(STATIC_ENCODINGS)


class StaticFilesWithoutCookies(SecureCookieSessionInterface):
    """The cookie session, except on static files: their content is the same for everyone, so they carry no
    `Vary: Cookie` (Flask adds it whenever anything, such as Flask-Login's after-request hook, looks at the
    session) and never set a cookie."""

    def save_session(self, app, session, response) -> None:
        if request.endpoint == "static":
            return
        super().save_session(app, session, response)


def init_static_files(app: Flask) -> None:
    """Serve and link static files by fingerprint (see the module's rules)."""
    plain = app.send_static_file

    def serve_static(filename: str) -> Response:
        manifest = static_manifest(app)
        found = manifest.by_fingerprint.get(filename)
        if found is not None:
            return _send_fingerprinted(app, manifest, found)
        if filename not in manifest.files and (current := manifest.current_of(filename)) is not None:
            return plain(current)
        return plain(filename)  # a 404 when there is no such file

    def link_fingerprinted(endpoint: str, values: dict) -> None:
        if endpoint == "static" and isinstance(values.get("filename"), str):
            values["filename"] = static_manifest(app).url_name(values["filename"])

    app.view_functions["static"] = serve_static
    app.url_defaults(link_fingerprinted)
    app.session_interface = StaticFilesWithoutCookies()
