"""An embedded S3 endpoint: moto's server in a child process, speaking the S3 HTTP protocol."""

import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# Where the kernel's ephemeral range is taken to begin when it does not say (Linux's default).
EPHEMERAL_LOW = 32768
# How many ports below the ephemeral range free_port picks from.
RESERVED_SPAN = 12000


def ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (Linux reports its range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_LOW


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, from below the kernel's ephemeral range.

    A port the kernel picks (bind to 0) comes from the range it also gives outgoing connections their
    source ports from: between choosing one for a service and the service binding it, any connection
    on the machine could take it, and the service failed to start with EADDRINUSE (an exporter, in
    repeated runs of the e2e tests, 2026-11-27). Below the range only another listener can take it.
    """
    low = ephemeral_low()
    candidates = range(max(1024, low - RESERVED_SPAN), low)
    for port in random.sample(candidates, min(64, len(candidates))):
        if port_is_free(port, host):
            return port
    with socket.socket() as sock:  # Nothing free below the range: let the kernel choose.
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on host:port."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class S3Server:
    """moto's S3 server on loopback; any access key and secret are accepted."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (a benchmark freezes it to take the endpoint down)."""
        if self._process is None:
            raise RuntimeError("the S3 server is not running")
        return self._process.pid

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server and wait until it answers."""
        output = open(self._log_file, "ab") if self._log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the S3 server exited with {self._process.returncode} (port {self.port} taken?)")
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # It answered, if only with an error: it is up.
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the S3 server did not answer on {self.endpoint} within {timeout_s} s")

    def stop(self) -> None:
        """Stop the server (its objects are lost)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
