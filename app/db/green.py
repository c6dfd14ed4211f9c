"""psycopg2 under gevent: the streams service's Gunicorn workers are gevent's (docs/deploy.md), and psycopg2 is
a C driver that would block the whole worker, every stream with it, while it waits on the database. With a wait
callback, psycopg2 hands each wait to gevent's hub instead (the pattern psycopg2 documents for coroutine
libraries: poll the connection, wait for the socket it names). Gunicorn's post_fork hook installs it in gevent
workers only (gunicorn.conf.py)."""
from __future__ import annotations


def make_psycopg2_green() -> None:
    import psycopg2
    from gevent.socket import wait_read, wait_write
    from psycopg2 import extensions

    def wait(conn, timeout=None) -> None:
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                wait_read(conn.fileno(), timeout=timeout)
            elif state == extensions.POLL_WRITE:
                wait_write(conn.fileno(), timeout=timeout)
            else:
                raise psycopg2.OperationalError(f"Bad result from poll: {state!r}")

    extensions.set_wait_callback(wait)
