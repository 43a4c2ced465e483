"""Start and stop the tests' private localstripe (``tests.support.stripe_server``).

Kept apart from the server module so the test process never imports localstripe.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from tests.support.postgres import _free_port


class StripeServer:
    """A localstripe process on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StripeServer:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.stripe_server", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("localstripe exited: " + self.process.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("localstripe did not start within 20 s")

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_config/everything", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()

    def limit(self, *, per_second: int, per_endpoint: int) -> None:
        """Stripe's rate limits on from now (0: off): 429 past them."""
        body = json.dumps({"global": per_second, "endpoint": per_endpoint}).encode()
        request = urllib.request.Request(
            self.url + "/_config/rate_limit",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    def refused(self) -> int:
        """How many requests it answered 429 since its limits were set."""
        with urllib.request.urlopen(self.url + "/_config/rate_limit", timeout=10) as answer:
            return int(json.load(answer)["refused"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
