"""Shared fixtures: unique segment names, a watchdog, and helper processes (tests/roles.py)."""

from __future__ import annotations

import faulthandler
import os
import select
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROLES = Path(__file__).with_name("roles.py")
WATCHDOG_S = 120


@pytest.fixture(autouse=True)
def watchdog():
    """Nothing here may hang: dump every thread's stack and exit if a test runs too long."""
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def name():
    """A fresh segment name, removed afterwards if a test left it behind."""
    n = f"qads-py-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    yield n
    try:
        os.unlink(f"/dev/shm/{n}")
    except FileNotFoundError:
        pass


class Role:
    """A helper process running one role of roles.py; talks in lines on stdin/stdout."""

    def __init__(self, role: str, *args: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROLES), role, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def expect(self, prefix: str, timeout: float = 30.0) -> str:
        """The next stdout line, which must start with `prefix`."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            raise AssertionError(f"helper sent nothing in {timeout} s; stderr: {self.proc.stderr.read()}")
        line = self.proc.stdout.readline().strip()
        if not line.startswith(prefix):
            self.proc.kill()
            raise AssertionError(f"helper said {line!r}, expected {prefix!r}; stderr: {self.proc.stderr.read()}")
        return line[len(prefix):].strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def spawn():
    made: list[Role] = []

    def make(role: str, *args: object) -> Role:
        r = Role(role, *args)
        made.append(r)
        return r

    yield make
    for r in made:
        if r.proc.poll() is None:
            r.kill()


def shm_ranges(name: str) -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of /dev/shm/<name>, from /proc/self/maps."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == f"/dev/shm/{name}":
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out
