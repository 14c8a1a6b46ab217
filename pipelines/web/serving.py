"""The web app served for real in this process: uvicorn in a background thread on 127.0.0.1.

For the browser tests (tests/browsing.py) and the web app's screenshots
(pipelines/web/screenshots.py), which drive headless Chromium against the same server `mimamori
serve` runs, not a test client. The socket is bound here, before uvicorn starts, on a port the
system chooses, so two servers (two test processes, a screenshot run beside a test) never race
for one port, and the URL is known before the first request.
"""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn
from fastapi import FastAPI

START_SECONDS = 30   # uvicorn starts in well under a second; this only bounds a broken start


class ServerFailed(RuntimeError):
    """uvicorn did not start (or did not stop) in time."""


@contextmanager
def served(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` for the duration of the block; yields its base URL, e.g. http://127.0.0.1:41234.

    On leaving, uvicorn is asked to exit (as Ctrl-C would), finishes the requests in flight and
    closes its connections (a browser's kept-alive ones after `timeout_graceful_shutdown`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    # not the main thread: uvicorn installs no signal handlers, so Ctrl-C still reaches pytest
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServerFailed(f"the web app did not start on {host}:{port}")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(START_SECONDS)
        sock.close()
        if thread.is_alive():
            raise ServerFailed(f"the web app on {host}:{port} did not stop")
