"""A private ``redis-server`` for taxview: started on a free loopback port, data in a working
directory (AOF on, ``appendfsync everysec`` by default or ``always``), stopped on exit."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from .errors import LedgerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: Path | str, appendfsync: str = "everysec", port: int | None = None) -> None:
        if appendfsync not in ("everysec", "always", "no"):
            raise LedgerError(f"appendfsync must be everysec|always|no, got {appendfsync!r}")
        self.workdir = Path(workdir)
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise LedgerError(
                "redis-server not found: run ./dev (it installs Debian's redis-server) or "
                "apt-get install redis-server, or pass --redis URL"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            "redis.log",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None:
                    raise LedgerError(
                        f"redis-server exited with {self.proc.returncode}; see {self.workdir / 'redis.log'}"
                    ) from None
            if time.monotonic() > deadline:
                self.stop()
                raise LedgerError(f"redis-server did not answer on port {self.port} within {timeout}s")
            time.sleep(0.02)
        client.close()
        return self

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: redis-server flushes the AOF and exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL (a crash): nothing is flushed beyond what appendfsync already wrote."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def connect(url: str | None, workdir: Path | str, appendfsync: str = "everysec"):
    """(client, server or None): a URL connects (password and TLS via rediss:// in the URL);
    without one, a private server is started in ``workdir``."""
    url = url or os.environ.get("TAXVIEW_REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        try:
            client.ping()
        except redis.exceptions.RedisError as exc:
            raise LedgerError(f"cannot reach Redis at {url}: {exc}") from exc
        return client, None
    server = RedisServer(workdir, appendfsync).start()
    return server.client(), server
