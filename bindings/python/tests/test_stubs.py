"""The type stubs of the native extension (``_native.pyi``) are written by hand; mypy's ``stubtest`` checks them
against the extension as built (every class, method, parameter, default and ``__all__``), so they cannot drift."""

from __future__ import annotations

import subprocess
import sys


def test_the_native_stubs_match_the_extension(tmp_path):
    # From an empty directory: stubtest must see the installed package, not a source tree.
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "qadataswap._native"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
