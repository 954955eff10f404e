"""The private ``redis-server`` of a working directory (the client side: ``ledger.connection``).

The private server listens on a free loopback port with a password generated once per data
directory (``password``, mode 0600) and handed to it in a ``redis.conf`` of mode 0600, so it never
appears in ``ps``; its data (AOF on, ``appendfsync everysec`` by default or ``always``) stays in
the data directory (mode 0700, files 0600).

One server per data directory, whatever runs: ``server.lock`` is held (``flock``) by the process
that started the server for as long as it runs, so a second ``RedisServer`` on the same directory
is refused. ``PrivateLedger`` is what the CLI uses: the first command on a working directory starts
the server (it is its owner); a command that finds it running connects to it; each command holds a
shared lock on ``users.lock`` while it uses the server, and the owner, when it ends, waits for the
others before it stops the server. A server left behind by an owner that was killed (SIGKILL) is
found through ``state.json`` and stopped by the next command before it starts a new one.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from .connection import client_from_url
from .errors import LedgerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerBusy(LedgerError):
    """Another process runs (or is starting) the private redis-server of this data directory."""


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (never readable by others)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _password(data: Path) -> str:
    path = data / "password"
    if path.is_file():
        os.chmod(path, 0o600)
        text = path.read_text().strip()
        if text:
            return text
    pw = secrets.token_urlsafe(32)
    _write_private(path, pw + "\n")
    return pw


def _lock(path: Path, how: int) -> int | None:
    """An open fd holding ``flock(how)`` on ``path``, or None when ``LOCK_NB`` and it is taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the only fd of the open file releases its flock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return sys.platform != "linux"  # no /proc to ask: trust the state file


def read_state(data: Path) -> dict:
    try:
        return json.loads((data / "state.json").read_text())
    except (OSError, ValueError):
        return {}


class RedisServer:
    """One redis-server on loopback with its data in ``workdir``; ``start`` refuses (``ServerBusy``)
    while another process runs one on the same directory."""

    def __init__(self, workdir: Path | str, appendfsync: str = "everysec", port: int | None = None) -> None:
        if appendfsync not in ("everysec", "always", "no"):
            raise LedgerError(f"appendfsync must be everysec|always|no, got {appendfsync!r}")
        self.workdir = Path(workdir)
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.password = ""
        self.proc: subprocess.Popen | None = None
        self._lock_fd: int | None = None
        self._owner = ""

    @property
    def url(self) -> str:
        """The URL with the password: hand it to workers, never print it (``redact``)."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def acquire(self, owner: str = "") -> RedisServer:
        """Take the directory's server lock (``ServerBusy`` if held) and stop a server a killed
        owner left behind."""
        if self._lock_fd is not None:
            return self
        _private_dir(self.workdir)
        fd = _lock(self.workdir / "server.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            st = read_state(self.workdir)
            raise ServerBusy(
                f"{self.workdir} is in use by pid {st.get('owner_pid', '?')} ({st.get('owner') or 'taxview'})"
            )
        self._lock_fd = fd
        stale = read_state(self.workdir).get("pid")
        if isinstance(stale, int) and _alive(stale) and _is_redis(stale):
            print(f"taxview: stopping a redis-server left running on {self.workdir} (pid {stale})", file=sys.stderr)
            os.kill(stale, signal.SIGTERM)  # it flushes its AOF and exits
            deadline = time.monotonic() + 10
            while _alive(stale) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(stale):
                os.kill(stale, signal.SIGKILL)
                while _alive(stale):
                    time.sleep(0.05)
        (self.workdir / "state.json").unlink(missing_ok=True)
        self._owner = owner
        return self

    def wipe(self) -> None:
        """Delete the data (AOF, RDB) before a start: an empty ledger. Needs ``acquire`` first."""
        assert self._lock_fd is not None and self.proc is None
        shutil.rmtree(self.workdir / "appendonlydir", ignore_errors=True)
        for name in ("appendonly.aof", "dump.rdb"):
            (self.workdir / name).unlink(missing_ok=True)

    def start(self, timeout: float = 20.0, owner: str = "") -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise LedgerError(
                "redis-server not found: run ./dev (it installs Debian's redis-server) or "
                "apt-get install redis-server, or pass --redis URL"
            )
        self.acquire(owner)
        try:
            self._launch(exe, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, exe: str, timeout: float) -> None:
        data = self.workdir
        self.password = _password(data)
        for path in data.rglob("*"):  # data written by older versions: owner only
            if path.is_file() and not path.is_symlink():
                os.chmod(path, 0o600)
        conf = "\n".join(
            [
                f"port {self.port}",
                "bind 127.0.0.1",
                "protected-mode yes",
                "dir .",  # the data directory (cwd below): no path to quote
                "appendonly yes",
                f"appendfsync {self.appendfsync}",
                'save ""',
                "daemonize no",
                "logfile redis.log",
                f"requirepass {self.password}",
                "",
            ]
        )
        _write_private(data / "redis.conf", conf)
        self.proc = subprocess.Popen(
            [exe, "redis.conf"],
            cwd=data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is the CLI's to handle, not the server's
            umask=0o077,  # AOF, log: owner only
        )
        _write_private(
            data / "state.json",
            json.dumps({"pid": self.proc.pid, "port": self.port, "owner_pid": os.getpid(), "owner": self._owner}),
        )
        client = self.client()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    if self.proc.poll() is not None:
                        raise LedgerError(
                            f"redis-server exited with {self.proc.returncode}; see {data / 'redis.log'}"
                        ) from None
                if time.monotonic() > deadline:
                    raise LedgerError(f"redis-server did not answer on port {self.port} within {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password or None, **kw)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        """SIGTERM (redis-server flushes its AOF and exits), then release the directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._release()

    def kill(self) -> None:
        """SIGKILL (a crash): nothing is flushed beyond what appendfsync already wrote."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            if self.proc is not None and read_state(self.workdir).get("pid") == self.proc.pid:
                (self.workdir / "state.json").unlink(missing_ok=True)
            _unlock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class PrivateLedger:
    """The private redis-server of a working directory, shared by the taxview commands that use it.

    ``open`` starts it (this command is then its owner) or connects to the one another command
    runs. ``close``: a command that connected just lets go; the owner waits until no other command
    uses the server (saying so once), then stops it. An interrupt while it waits stops it at once.
    ``fresh`` (the demo) empties the ledger first, and refuses while any other command uses it.
    """

    def __init__(self, workdir: Path | str, appendfsync: str = "everysec", command: str = "taxview") -> None:
        self.data = Path(workdir)
        self.appendfsync = appendfsync
        self.command = command
        self.server: RedisServer | None = None  # set when this command started the server
        self.url = ""
        self._users: int | None = None

    @property
    def owner(self) -> bool:
        return self.server is not None

    def open(self, fresh: bool = False, timeout: float = 20.0) -> PrivateLedger:
        _private_dir(self.data)
        mutex = _lock(self.data / "mutex.lock", fcntl.LOCK_EX)  # short: start or attach, one at a time
        try:
            self._users = _lock(self.data / "users.lock", fcntl.LOCK_SH)
            server = RedisServer(self.data, self.appendfsync)
            try:
                server.acquire(self.command)
            except ServerBusy:
                self._attach(fresh)
            else:
                try:
                    if fresh:
                        if not self._alone():
                            raise ServerBusy(
                                f"{self.data} is in use by another taxview command: the demo starts from an empty "
                                "ledger; wait for it or use another --workdir"
                            )
                        server.wipe()
                    server.start(timeout, owner=self.command)
                except BaseException:
                    server.stop()
                    raise
                self.server, self.url = server, server.url
        except BaseException:
            _unlock(self._users)
            self._users = None
            raise
        finally:
            _unlock(mutex)
        return self

    def _alone(self) -> bool:
        """Whether no other command holds ``users.lock`` (our shared lock is converted and back)."""
        try:
            fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(self._users, fcntl.LOCK_SH)
        return True

    def _attach(self, fresh: bool) -> None:
        st = read_state(self.data)
        who = f"pid {st.get('owner_pid', '?')} ({st.get('owner') or 'taxview'})"
        if fresh:
            raise ServerBusy(
                f"{self.data} is in use by {who}: the demo starts from an empty ledger; "
                "wait for it or use another --workdir"
            )
        password = (self.data / "password").read_text().strip() if (self.data / "password").is_file() else ""
        if not st.get("port") or not password:
            raise ServerBusy(f"{self.data} is in use by {who} but its server cannot be found; wait or pass --redis")
        self.url = f"redis://:{password}@127.0.0.1:{st['port']}/0"
        client = client_from_url(self.url, 5.0)
        try:
            client.ping()
        except redis.exceptions.RedisError as exc:
            raise ServerBusy(f"{self.data} is in use by {who} but its redis-server does not answer ({exc}); "
                             "wait or pass --redis") from None  # fmt: skip
        finally:
            client.close()

    def close(self) -> None:
        if self._users is None:
            return
        try:
            if self.server is not None:
                self._stop_when_alone()
        finally:
            if self.server is not None:
                self.server.stop()  # interrupted while waiting: stop it now
            _unlock(self._users)
            self._users = None

    def _stop_when_alone(self) -> None:
        said = False
        while True:
            mutex = _lock(self.data / "mutex.lock", fcntl.LOCK_EX)
            try:
                if self._alone():
                    self.server.stop()  # under the mutex: nobody attaches to a server going away
                    return
            finally:
                _unlock(mutex)
            if not said:
                print(
                    f"taxview: other taxview commands are using the ledger in {self.data}: "
                    "waiting for them before stopping its redis-server (Ctrl-C stops it now)",
                    file=sys.stderr,
                )
                said = True
            time.sleep(0.2)

    def __enter__(self) -> PrivateLedger:
        return self if self._users is not None else self.open()

    def __exit__(self, *exc) -> None:
        self.close()
