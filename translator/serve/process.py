"""A `translator serve` subprocess on a free localhost port: what the benchmark and the tests start
and talk to, so that both measure and check the real command, not an in-process imitation."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The server's ready line names the ports it bound (`translator.serve.server._announce`).
_READY = re.compile(rb"^serving model .* on http://127\.0\.0\.1:(\d+)(?:, gRPC on 127\.0\.0\.1:(\d+))?;", re.MULTILINE)


class ServerProcess:
    """`python -m translator.cli serve ARGS --port 0` on 127.0.0.1: the system picks the ports (no race
    with another process for a port found free a moment before), read from the server's ready line;
    ready once `/healthz` answers.

    Use as a context manager; leaving it sends SIGTERM (a graceful drain) and waits. Output goes to
    `log_path`, read by `output()` when a test needs to show why the server failed.
    """

    def __init__(self, args: list[str], log_path: Path, grpc: bool = False, env: dict | None = None):
        self.port: int | None = None  # known once started
        self.grpc_port: int | None = None
        self.grpc = grpc
        grpc_args = ["--grpc-port", "0"] if grpc else ["--no-grpc"]
        self.command = [sys.executable, "-m", "translator.cli", "serve", *args, "--port", "0", *grpc_args]
        self.log_path = Path(log_path)
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> ServerProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            if self.port is None:
                ready = _READY.search(self.log_path.read_bytes())
                if ready:
                    self.port = int(ready.group(1))
                    self.grpc_port = int(ready.group(2)) if self.grpc else None
            try:
                if self.port is not None and self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f} s:\n{self.output()}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout=120):
        """(status, parsed JSON or raw text) of one HTTP request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait for the drain; the exit status (killed if it hangs)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
