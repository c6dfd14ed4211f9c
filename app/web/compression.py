"""Compressed responses (Flask-Compress): brotli where the client accepts it, else gzip.

Rules:
- Only text that compresses: HTML, CSS, JavaScript, JSON (any +json type) and SVG, and only above 1 KB
  (1024 bytes): smaller answers fit a packet or two anyway, and compressing costs CPU.
- Nothing without `Accept-Encoding`; every answer carries `Vary: Accept-Encoding`, so shared caches keep the
  encodings apart.
- Never a response that must stream (`text/event-stream`): a compressor holds the events back until its buffer
  fills. The list below leaves it out, and it is refused here by name so no later change of the list can let it
  in.
- A compressed answer's ETag is weak (W/"…"): the compressed bytes are equivalent to the plain ones, not the same.
  Its validator is otherwise the app's own, so the app's conditional checks (the tracking JSON and pages, static
  files), which compare weakly as HTTP says If-None-Match does, still answer 304 before anything is rendered.
  (Flask-Compress would append ":br" to a strong ETag, which the app's own check can never match: every
  revalidation would render, compress and only then turn into a 304.)
"""
from __future__ import annotations

from flask import Flask, Response, request
from flask_compress import Compress

COMPRESSED_TYPES = (
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/problem+json",
    "application/geo+json",
    "application/manifest+json",
    "image/svg+xml",
)
NEVER_COMPRESSED = frozenset({"text/event-stream"})
SETTINGS = {
    "COMPRESS_MIMETYPES": list(COMPRESSED_TYPES),
    "COMPRESS_MIN_SIZE": 1025,  # Flask-Compress leaves out what is smaller than this: "over 1 KB"
    "COMPRESS_ALGORITHM": ["br", "gzip"],  # the first the client accepts, at equal q-values
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],  # static files are sent as streams
    "COMPRESS_BR_LEVEL": 5,
    "COMPRESS_LEVEL": 6,
    "COMPRESS_REGISTER": False,  # compress_response below calls it, to make the ETag weak afterwards
    "COMPRESS_EVALUATE_CONDITIONAL_REQUEST": False,  # the app's own checks did, against the same validator
}


def init_compression(app: Flask) -> None:
    """Flask-Compress for this app (an instance per app: it keeps the app's types and algorithms on itself),
    called by an after_request hook of ours."""
    for name, value in SETTINGS.items():
        app.config.setdefault(name, value)
    app.config["COMPRESS_MIMETYPES"] = [kind for kind in app.config["COMPRESS_MIMETYPES"]
                                        if kind not in NEVER_COMPRESSED]
    compress = Compress(app)

    def compress_response(response: Response) -> Response:
        """Compress (Flask-Compress decides), then weaken the ETag of what it compressed."""
        if response.mimetype in NEVER_COMPRESSED:
            return response
        etag, weak = response.get_etag()
        if response.status_code == 304 and etag and not weak and request.if_none_match.is_weak(etag):
            response.set_etag(etag, weak=True)  # the validator as the client holds it, from a compressed answer
            return compress.after_request(response)
        already_encoded = "Content-Encoding" in response.headers
        response = compress.after_request(response)
        if etag and not weak and not already_encoded and "Content-Encoding" in response.headers:
            response.set_etag(etag, weak=True)
        return response

    app.after_request(compress_response)
