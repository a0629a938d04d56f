"""The ``qadataswap`` command-line tool from Python: ``python -m qadataswap ls`` or the ``qadataswap`` console script
(the same tool as ``cargo install --path crates/qadataswap-cli``, built into the native module)."""

from __future__ import annotations

import signal
import sys
import threading

from ._native import cli_main


def main(argv: list[str] | None = None) -> int:
    """Run the tool with ``argv`` (default: this process's arguments) and return its exit code."""
    # The tool runs in native code with the GIL released: let Ctrl-C end it the way it ends the binary, for the
    # length of the call only (a program calling main() keeps its own handler afterwards).
    previous = signal.getsignal(signal.SIGINT)
    own = previous is signal.default_int_handler and threading.current_thread() is threading.main_thread()
    if own:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        args = ["qadataswap", *(sys.argv[1:] if argv is None else argv)]
        sys.stdout.flush()
        sys.stderr.flush()
        return int(cli_main(args, [sys.executable, "-m", "qadataswap"]))
    finally:
        if own:
            signal.signal(signal.SIGINT, previous)
