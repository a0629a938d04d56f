"""R15 restart soak: a Python reader beside the Rust ones (started by crates/qadataswap-arrow/tests/soak.rs).

It checks every frame it reads exactly as soak.rs's `verify` does: one batch of `rows_of(seq)` rows, columns
seq/gen/row/sum with every seq equal to the frame's, one generation, rows 0..n and each sum the splitmix64
checksum of (seq, gen, row); never a frame older than one already read. It prints the `@@ ` lines of the Rust
reader (ARMED, OPEN, V <n>, REOPEN, DONE <n>, FAIL <why>), closes cleanly on SIGTERM or when stdin closes (the
parent's clean shutdown), and reopens the name when the writer closed it (a clean close unlinks a non-persistent
segment; the next writer creates a new one).

    python soak_reader.py           # the reader role; QADS_SOAK_NAME names the segment, QADS_SOAK_CHILD_SEED seeds it
    python soak_reader.py --probe   # open, read and check one frame, print `@@ PROBE ok <checksum(7, 3, 11)>`, exit
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

MARK = "@@ "
MAX_ROWS = 20_000  # soak.rs MAX_ROWS
M64 = (1 << 64) - 1
REOPEN_TIMEOUT = 20.0  # soak.rs REOPEN_TIMEOUT

# Set by the SIGTERM handler or when stdin closes. Python runs signal handlers in the main thread between bytecodes,
# so a plain store is enough (no lock a handler could deadlock on).
STOP = [False]


def say(line: str) -> None:
    print(MARK + line, flush=True)


def fail(msg: str) -> None:
    say("FAIL python reader: " + msg)
    sys.stdout.flush()
    os._exit(3)


def on_sigterm(_signum: int, _frame: object) -> None:
    STOP[0] = True


def watch_stdin() -> None:
    try:
        while os.read(0, 64):
            pass
    except OSError:
        pass
    STOP[0] = True


# --- the frame contents (a port of soak.rs) ---------------------------------------------------------------------


def mix(z: int) -> int:
    """splitmix64's finaliser, as soak.rs `mix`."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & M64


def rows_of(seq: int) -> int:
    return 1 + mix(seq ^ 0xABCD) % MAX_ROWS


def checksum(seq: int, gen: int, row: int) -> int:
    return mix(((seq * 0x1_0000_0001) & M64) ^ rotl(gen, 17) ^ row)


class Rng:
    """soak.rs `Rng`: the child's choices (how many frames to hold, for how long) from its seed."""

    def __init__(self, seed: int) -> None:
        self.state = seed & M64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        return mix(self.state)

    def below(self, n: int) -> int:
        return self.next() % n

    def chance(self, percent: int) -> bool:
        return self.below(100) < percent

    def seconds(self, lo_ms: int, hi_ms: int) -> float:
        return (lo_ms + self.below(hi_ms - lo_ms + 1)) / 1000.0


def checksums(np, seq: int, gen: int, n: int):  # noqa: ANN001, ANN201 - numpy is imported late
    """`checksum(seq, gen, row)` for rows 0..n at once (uint64 arithmetic wraps like Rust's wrapping ops)."""
    c = np.uint64
    z = np.arange(n, dtype=np.uint64) ^ c(((seq * 0x1_0000_0001) & M64) ^ rotl(gen, 17))
    with np.errstate(over="ignore"):
        z = z + c(0x9E3779B97F4A7C15)
        z = (z ^ (z >> c(30))) * c(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> c(27))) * c(0x94D049BB133111EB)
    return z ^ (z >> c(31))


def verify(np, pa, frame, last: tuple[int, int]) -> tuple[tuple[int, int], object]:  # noqa: ANN001
    """Check that `frame` is one whole frame as written and not older than `last` (generation, seq). Returns its
    position and the table (which holds the frame's lease while referenced), or raises ValueError."""
    seq = frame.seq
    if frame.num_batches != 1:
        raise ValueError(f"frame {seq}: {frame.num_batches} batches, wrote 1")
    t = pa.table(frame)
    want = [("seq", pa.uint64()), ("gen", pa.uint64()), ("row", pa.uint32()), ("sum", pa.uint64())]
    if [(f.name, f.type) for f in t.schema] != want:
        raise ValueError(f"frame {seq}: schema changed: {t.schema}")
    n = t.num_rows
    if n != rows_of(seq) or frame.num_rows != n:
        raise ValueError(f"torn frame {seq}: {n} rows (descriptor {frame.num_rows}), wrote {rows_of(seq)}")
    seqs, gens, rows, sums = (t.column(i).to_numpy() for i in range(4))
    gen = int(gens[0])
    ok = (
        (seqs == np.uint64(seq))
        & (gens == np.uint64(gen))
        & (rows == np.arange(n, dtype=np.uint32))
        & (sums == checksums(np, seq, gen, n))
    )
    if not ok.all():
        i = int(np.argmin(ok))
        raise ValueError(
            f"torn frame {seq} (generation {gen}) at row {i}: seq {seqs[i]} gen {gens[i]} row {rows[i]} "
            f"sum {int(sums[i]):#x}"
        )
    if gen < last[0] or seq < last[1]:
        raise ValueError(f"went backwards: read (gen {gen}, seq {seq}) after (gen {last[0]}, seq {last[1]})")
    return (gen, seq), t


# --- the roles ---------------------------------------------------------------------------------------------------


def open_reader(qds, name: str):  # noqa: ANN001, ANN201
    """Attach to `name`, waiting while it does not exist (between a clean close, which unlinks it, and the next
    writer's create). None if asked to stop meanwhile."""
    deadline = time.monotonic() + REOPEN_TIMEOUT
    while True:
        try:
            return qds.SharedDataFrame.create_reader(name, open_timeout=5.0)
        except qds.SegmentNotFoundError:
            if STOP[0]:
                return None
            if time.monotonic() > deadline:
                fail(f"'{name}' did not reappear within {REOPEN_TIMEOUT} s")
            time.sleep(0.002)
        except Exception as e:  # noqa: BLE001 - every other error is a failure of the soak
            fail(f"open: {type(e).__name__}: {e}")


def probe(name: str) -> None:
    try:
        import numpy as np
        import pyarrow as pa

        import qadataswap as qds

        r = qds.SharedDataFrame.create_reader(name, open_timeout=5.0)
        f = r.read_frame(5.0)
        _, t = verify(np, pa, f, (0, 0))
        del t, f
        r.close()
    except Exception as e:  # noqa: BLE001 - the parent decides what a failed probe means
        say(f"PROBE failed {type(e).__name__}: {e}".replace("\n", " "))
        return
    say(f"PROBE ok {checksum(7, 3, 11)}")


def run_reader(name: str, rng: Rng) -> None:
    import numpy as np
    import pyarrow as pa

    import qadataswap as qds

    reader = open_reader(qds, name)
    if reader is None:
        say("DONE 0")
        return
    say("OPEN")
    last = (0, 0)
    verified = reported = 0
    while not STOP[0]:
        # Frames held at once (each holds a lease on its slot until its table and frame are dropped).
        held = []
        k = rng.below(10)
        if k <= 3:
            want, hold = 1, 0.0
        elif k <= 6:
            want, hold = 1, rng.seconds(0, 20)
        else:
            want, hold = 1 + rng.below(3), rng.seconds(0, 30)
        gone = closed = False
        while len(held) < want:
            newest = rng.chance(20)
            try:
                # The newest frame (possibly one already read: checked again, not held), or the next newer one.
                f = reader.read_frame(0.05) if newest else reader.read_next_frame(0.25)
            except (qds.WriterDiedError, TimeoutError):
                # The writer was killed (or is being replaced), or holds back because every slot is leased.
                gone = True
                break
            except qds.WriterClosedError:
                closed = True
                break
            except Exception as e:  # noqa: BLE001
                fail(f"read: {type(e).__name__}: {e}")
            try:
                pos, t = verify(np, pa, f, last)
            except ValueError as e:
                fail(str(e))
            verified += 1
            if pos[1] <= last[1]:
                # The newest frame is one we already have: nothing newer yet.
                del t, f
                break
            last = pos
            held.append((f, t))
        if held and hold > 0:
            time.sleep(hold)
        held.clear()
        if closed:
            # The writer closed cleanly; a non-persistent segment's name is gone: the next writer makes a new one.
            reader.close()
            reader = open_reader(qds, name)
            if reader is None:
                break
            last = (0, 0)
            say("REOPEN")
        elif gone:
            time.sleep(0.002)
        if verified >= reported + 16:
            reported = verified
            say(f"V {verified}")
    if reader is not None:
        reader.close()
    say(f"DONE {verified}")


def main() -> None:
    # First of all, so that a SIGTERM after ARMED always means a clean close.
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        import ctypes

        # PR_SET_PDEATHSIG = 1: die with the parent test (as the Rust children do).
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    name = os.environ["QADS_SOAK_NAME"]
    if sys.argv[1:] == ["--probe"]:
        probe(name)
        return
    say("ARMED")
    threading.Thread(target=watch_stdin, daemon=True).start()
    run_reader(name, Rng(int(os.environ.get("QADS_SOAK_CHILD_SEED", "1"))))


if __name__ == "__main__":
    main()
