"""The README's Python quick start, run exactly as printed: the two code blocks marked `readme-test: python writer`
and `readme-test: python reader` become writer.py and reader.py, run as two processes in both orders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"
NAMES = ("mydata", "bigdata")


def blocks() -> dict[str, str]:
    text = README.read_text()
    found = dict(re.findall(r"<!-- readme-test: python (\w+) -->\n```python\n(.*?)```", text, re.S))
    assert set(found) == {"writer", "reader"}, f"README quick start blocks not found: {sorted(found)}"
    return found


def clean() -> None:
    for n in NAMES:
        try:
            os.unlink(f"/dev/shm/{n}")
        except FileNotFoundError:
            pass


def start(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def waiting_on_inotify(pid: int) -> bool:
    """Whether process `pid` holds an inotify descriptor (a reader waiting for its writer to create the name)."""
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    try:
        return any("inotify wd:" in (fdinfo / fd).read_text() for fd in os.listdir(fdinfo))
    except OSError:
        return False


def until(condition, what: str, proc: subprocess.Popen, limit: float = 60.0) -> None:
    """Wait for an observable condition (with a watchdog), failing if `proc` exits first."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"{what}: the process exited first: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{what}: not within {limit} s"
        time.sleep(0.005)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


@pytest.mark.parametrize("order", ["writer first", "reader first"])
def test_the_readme_python_quick_start_runs_as_printed_in_two_processes(order, tmp_path):
    code = blocks()
    (tmp_path / "writer.py").write_text(code["writer"])
    (tmp_path / "reader.py").write_text(code["reader"])
    clean()
    try:
        if order == "writer first":
            writer = start(tmp_path / "writer.py")
            until(lambda: os.path.exists("/dev/shm/mydata"), "the writer creates mydata", writer)
            reader = start(tmp_path / "reader.py")
        else:
            reader = start(tmp_path / "reader.py")
            until(lambda: waiting_on_inotify(reader.pid), "the reader waits for mydata", reader)
            writer = start(tmp_path / "writer.py")
        assert finish(reader).split() == ["(3,", "2)", "45000"]
        finish(writer)
        assert not any(os.path.exists(f"/dev/shm/{n}") for n in NAMES), "the writer left its segments behind"
    finally:
        clean()
