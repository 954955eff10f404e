"""A watchdog for one taxview command: if the command dies without cleaning up (SIGKILL, the OOM
killer), it stops what the command started (its private redis-server, its local Ray's processes).

``Reaper.start()`` runs ``python -m cluster.reaper PID`` in its own session with a pipe on its
stdin. While the command lives, the reaper notes every process below it (pid and start time, from
``/proc``) twice a second. ``close()`` (the command ended normally) writes ``done`` and the reaper
exits; an end of input without ``done``, or a new parent, means the command died: the reaper sends
SIGTERM to every process it noted that still runs (redis-server flushes its AOF), and SIGKILL to
those still there 5 s later. Linux only (elsewhere ``start`` returns None).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


class Reaper:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    @classmethod
    def start(cls) -> Reaper | None:
        if not Path("/proc/self/stat").exists():
            return None
        proc = subprocess.Popen(
            [sys.executable, "-m", "cluster.reaper", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives a kill of the command's process group
        )
        return cls(proc)

    def close(self) -> None:
        """The command ends normally: nothing to reap."""
        try:
            self.proc.stdin.write(b"done\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of ``pid``, or None if it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[19]))


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every process below ``root``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(entry)
            if st is not None:
                children.setdefault(st[0], []).append((int(entry), st[1]))
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            if pid not in out:
                out[pid] = started
                todo.append(pid)
    return out


def _running(pid: int, started: int) -> bool:
    st = _stat(str(pid))
    return st is not None and st[1] == started


def _signal_all(noted: dict[int, int], sig: int) -> None:
    for pid, started in noted.items():
        if _running(pid, started):
            try:
                os.kill(pid, sig)
            except OSError:
                pass


def reap(noted: dict[int, int], grace_s: float = 5.0) -> None:
    _signal_all(noted, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_running(p, s) for p, s in noted.items()):
        time.sleep(0.1)
    _signal_all(noted, signal.SIGKILL)


def main(parent: int) -> int:
    noted: dict[int, int] = {}
    me = os.getpid()
    while True:
        ready, _, _ = select.select([0], [], [], 0.5)
        if ready:
            data = os.read(0, 64)
            if b"done" in data:
                return 0
            if not data:
                break  # the command died (its end of the pipe closed)
        if os.getppid() != parent:
            break
        noted.update(descendants(parent))
        noted.pop(me, None)
    reap(noted)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
