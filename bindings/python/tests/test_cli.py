"""The command-line tool inside the package (``python -m qadataswap``, the ``qadataswap`` console script): exit codes as
documented, and a bug inside it is one line on stderr and exit code 1, never a PanicException."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from qadataswap._cli import main


def test_a_missing_segment_is_exit_code_3_in_process(capfd):
    assert main(["inspect", "qads-no-such-segment-anywhere"]) == 3
    assert "does not exist" in capfd.readouterr().err


def test_a_panic_inside_the_tool_is_exit_code_1_and_python_carries_on(capfd):
    assert main(["panic-for-test"]) == 1
    assert "internal error" in capfd.readouterr().err
    # The tool's panic hook was its own: a second run (and Python) are unaffected.
    assert main(["inspect", "qads-no-such-segment-anywhere"]) == 3


def test_calling_main_leaves_the_programs_ctrl_c_handler_in_place():
    before = signal.getsignal(signal.SIGINT)
    main(["inspect", "qads-no-such-segment-anywhere"])
    assert signal.getsignal(signal.SIGINT) is before


def test_python_dash_m_qadataswap_runs_the_tool():
    r = subprocess.run(
        [sys.executable, "-m", "qadataswap", "--help"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "inspect" in r.stdout, r.stderr


def test_serve_in_a_tool_without_flight_says_how_to_get_it():
    # A missing token file: a build with Flight stops there at once, one without it before (never serving).
    r = subprocess.run(
        [sys.executable, "-m", "qadataswap", "serve", "--token-file", "/nonexistent/qads-token"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1, r.stderr
    if "token file" in r.stderr:
        pytest.skip("this build of the tool has Flight")
    assert "cargo install --path crates/qadataswap-cli" in r.stderr, r.stderr
