"""Per-request bookkeeping: the request id (X-Request-ID in and out), the request context that log lines and
audit rows read, and the request metrics. Registered first, so every other hook already runs inside it."""
from __future__ import annotations

import contextlib
import time

from flask import Flask, Response, g, request

from app.observability import metrics
from app.observability.request_context import (
    REQUEST_ID_HEADER,
    RequestInfo,
    bind_request,
    request_id_from_header,
    unbind_request,
)


def init_request_hooks(app: Flask) -> None:
    app.before_request(start_request)
    app.after_request(finish_request)
    app.teardown_request(end_request)


def start_request() -> None:
    g.request_started = time.perf_counter()
    info = RequestInfo(
        request_id=request_id_from_header(request.headers.get(REQUEST_ID_HEADER)),
        client_address=request.remote_addr,
        method=request.method,
        path=request.path,
    )
    g.request_info = info
    g.request_context_token = bind_request(info)


def finish_request(response: Response) -> Response:
    info = g.get("request_info")
    if info is not None:
        response.headers[REQUEST_ID_HEADER] = info.request_id
        metrics.count_request(request.endpoint, request.method, response.status_code,
                              time.perf_counter() - g.request_started)
    return response


def end_request(_exc: BaseException | None) -> None:
    token = g.pop("request_context_token", None)
    if token is not None:
        # ValueError: torn down in another context than it was bound in (copy_current_request_context)
        with contextlib.suppress(ValueError):
            unbind_request(token)
