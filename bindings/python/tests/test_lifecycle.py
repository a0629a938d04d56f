"""A segment's life at its edges (reliability.md promises 7 and 8): removal only of what is ours and unused, a
writer's close never removing a name another writer re-created, and frames inherited by fork() children that stay
unchanged while the parent drops its copy and the writer laps the ring."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os

import polars as pl
import pytest

import qadataswap
from qadataswap import SharedDataFrame


def test_unlink_refuses_a_live_segment_and_leaves_it_readable(name, spawn):
    writer = spawn("live_writer", name)
    writer.expect("ready")
    with pytest.raises(qadataswap.SegmentInUseError) as e:
        SharedDataFrame.unlink(name)
    assert writer.proc.pid in e.value.pids
    with pytest.raises(qadataswap.SegmentInUseError):
        SharedDataFrame.unlink(name, force=True)
    reader = SharedDataFrame.create_reader(name)
    assert reader.read()["a"].to_list() == [1, 2, 3]
    reader.close()
    assert writer.finish() == 0


def test_unlink_never_removes_another_applications_file(name):
    path = f"/dev/shm/{name}"
    with open(path, "wb") as f:
        f.write(b"\0" * 65536)
    os.utime(path, (0, 0))  # old enough for any grace period
    for force in (False, True):
        with pytest.raises(qadataswap.NotOursError):
            SharedDataFrame.unlink(name, force=force)
    with open(path, "rb") as f:
        assert f.read() == b"\0" * 65536


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a segment to another user")
def test_unlink_never_removes_another_users_segment(name):
    w = SharedDataFrame.create_writer(name, size_mb=1, persistent=True)
    w.write(pl.DataFrame({"a": [1]}))
    w.close()
    os.chown(f"/dev/shm/{name}", 65534, 65534)
    with pytest.raises(qadataswap.NotOursError):
        SharedDataFrame.unlink(name, force=True)
    assert os.stat(f"/dev/shm/{name}").st_uid == 65534


def test_unlink_of_a_missing_name_says_not_found(name):
    with pytest.raises(qadataswap.SegmentNotFoundError):
        SharedDataFrame.unlink(name)


def test_a_writer_closed_after_its_name_was_recreated_leaves_the_new_segment_alone(name, spawn):
    w1 = SharedDataFrame.create_writer(name, size_mb=1)
    w1.write(pl.DataFrame({"a": [1] * 100}))
    other = spawn("recreate", name)
    other.expect("ready")
    w1.close()
    reader = SharedDataFrame.create_reader(name)
    assert reader.read()["a"].sum() == 200, "writer 2's segment was removed or replaced"
    reader.close()
    assert other.finish() == 0


# ---- leases across fork(): a multiprocessing pool over fork, each child holding the parent's frame ----

_HELD: pl.DataFrame | None = None
_GO = None


def _sum_inherited() -> int:
    # Runs in a forked pool worker: waits until the parent dropped its copy and the writer lapped the ring. The values
    # are read without Polars' thread pool, which does not survive fork() (Polars' own limit: after a fork its
    # parallel operations can deadlock in the child), straight from the inherited buffers.
    assert _GO is not None and _GO.wait(60), "the parent never said go"
    assert _HELD is not None
    values = _HELD.get_column("v").to_arrow()
    labels = _HELD.get_column("s").to_arrow()
    return sum(values.to_pylist()) + labels.to_pylist().count("frame-1")


def test_frames_inherited_by_16_forked_workers_never_change_while_the_writer_laps_the_ring(name):
    global _HELD, _GO
    writer = SharedDataFrame.create_writer(name, size_mb=8, num_buffers=3, lease_timeout=30)
    rows = 50_000
    writer.write(pl.DataFrame({"v": [1] * rows, "s": ["frame-1"] * rows}))
    reader = SharedDataFrame.create_reader(name)
    _HELD = reader.read()
    expected = rows + rows
    # Start Polars' thread pool in the parent, as any earlier Polars work would.
    assert pl.DataFrame({"x": range(1_000_000)}).select(pl.col("x").sum()).item() > 0
    ctx = mp.get_context("fork")
    _GO = ctx.Event()
    with ctx.Pool(16) as pool:
        # The workers were forked with the frame; hand each a task, then drop the parent's copy.
        results = [pool.apply_async(_sum_inherited) for _ in range(16)]
        _HELD = None
        gc.collect()
        assert reader._lease_count() == 0, "the parent still holds the frame: the test would prove nothing"
        for i in range(2, 12):
            writer.write(pl.DataFrame({"v": [i] * rows, "s": [f"frame-{i}"] * rows}))
        _GO.set()
        sums = [r.get(60) for r in results]
    assert sums == [expected] * 16, "a frame changed under a forked worker"
    # The workers are gone: their leases were handed back or reclaimed, and the whole ring is writable again.
    for i in range(12, 18):
        writer.write(pl.DataFrame({"v": [i] * rows, "s": [f"frame-{i}"] * rows}))
    assert reader.read()["v"][0] == 17
    reader.close()
    writer.close()


# ---- R6, R7, R8 through the Python writer and reader ----


def test_a_writer_killed_while_creating_never_leaves_a_half_built_name_and_its_leftover_is_reclaimed(name, spawn):
    creator = spawn("huge_writer", name)
    mine = f".qads-new.{creator.proc.pid}."
    leftover = None
    while leftover is None:
        assert creator.proc.poll() is None and not os.path.exists(f"/dev/shm/{name}"), "created before it was killed"
        for entry in os.scandir("/dev/shm"):
            if entry.name.startswith(mine) and entry.stat().st_size >= 4096:
                leftover = entry.name
    creator.kill()
    with pytest.raises(qadataswap.SegmentNotFoundError):
        SharedDataFrame.create_reader(name, timeout=0)
    # The next writer sweeps the dead creator's leftover and creates the name.
    w = SharedDataFrame.create_writer(name, size_mb=1)
    w.write(pl.DataFrame({"a": [1]}))
    assert not os.path.exists(f"/dev/shm/{leftover}")
    w.close()


def test_a_killed_writers_segment_is_removed_only_with_force(name, spawn):
    writer = spawn("live_writer", name)
    writer.expect("ready")
    writer.kill()
    with pytest.raises(qadataswap.SegmentInUseError, match="force"):
        SharedDataFrame.unlink(name)
    SharedDataFrame.unlink(name, force=True)
    assert not os.path.exists(f"/dev/shm/{name}")


def test_squatted_names_are_refused_by_writer_and_reader_and_left_as_they_were(name, tmp_path):
    path = f"/dev/shm/{name}"
    # A symbolic link planted under the name.
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    os.symlink(target, path)
    try:
        with pytest.raises(qadataswap.Error):
            SharedDataFrame.create_writer(name, size_mb=1)
        with pytest.raises(qadataswap.Error):
            SharedDataFrame.create_reader(name, timeout=0)
        assert os.path.islink(path) and target.read_bytes() == b"precious"
    finally:
        os.unlink(path)
    # Another program's file.
    junk = bytes(range(256)) * 64
    with open(path, "wb") as f:
        f.write(junk)
    os.chmod(path, 0o600)
    with pytest.raises(qadataswap.Error):
        SharedDataFrame.create_writer(name, size_mb=1)
    with pytest.raises(qadataswap.Error):
        SharedDataFrame.create_reader(name, timeout=0)
    with open(path, "rb") as f:
        assert f.read() == junk
    os.unlink(path)
    # Our own segment made readable by others: refused until the mode is safe again.
    w = SharedDataFrame.create_writer(name, size_mb=1, persistent=True)
    w.write(pl.DataFrame({"a": [5]}))
    w.close()
    os.chmod(path, 0o644)
    with pytest.raises(qadataswap.Error, match="0644"):
        SharedDataFrame.create_reader(name, timeout=0)
    os.chmod(path, 0o600)
    assert SharedDataFrame.create_reader(name).read()["a"][0] == 5


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a segment to another user")
def test_another_users_segment_is_refused_by_writer_and_reader(name):
    w = SharedDataFrame.create_writer(name, size_mb=1, persistent=True)
    w.write(pl.DataFrame({"a": [5]}))
    w.close()
    os.chown(f"/dev/shm/{name}", 65534, 65534)
    with pytest.raises(qadataswap.Error):
        SharedDataFrame.create_writer(name, size_mb=1)
    with pytest.raises(qadataswap.Error):
        SharedDataFrame.create_reader(name, timeout=0)
    assert os.stat(f"/dev/shm/{name}").st_uid == 65534
