"""Zero-copy, proven by addresses: every buffer of the DataFrame a reader returns lies inside the segment's mapping
(found in /proc/self/maps); and the lease returns only when the last DataFrame or Series using it is gone."""

from __future__ import annotations

import gc

import numpy as np
import polars as pl
import pyarrow as pa

from conftest import shm_ranges
from qadataswap import SharedDataFrame


def buffer_addresses(table: pa.Table) -> list[int]:
    out = []

    def walk(arr: pa.Array) -> None:
        for b in arr.buffers():
            if b is not None and b.size > 0:
                out.append(b.address)

    for col in table.columns:
        for chunk in col.chunks:
            walk(chunk)
    return out


def inside(addr: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= addr < hi for lo, hi in ranges)


def sample_frame(rows: int = 100_000) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    return pl.DataFrame(
        {
            "i": rng.integers(0, 1 << 40, rows),
            "f": rng.random(rows),
            "s": [f"value number {i}" if i % 7 else None for i in range(rows)],
            "b": rng.random(rows) > 0.5,
        }
    )


def test_every_buffer_of_the_polars_frame_points_into_the_segment(name):
    writer = SharedDataFrame.create_writer(name, size_mb=64)
    writer.write(sample_frame())
    reader = SharedDataFrame.create_reader(name)
    df = reader.read()
    ranges = shm_ranges(name)
    assert ranges, "the segment is not in /proc/self/maps"
    table = df.to_arrow(compat_level=pl.CompatLevel.newest())  # zero-copy for these types
    addrs = buffer_addresses(table)
    assert len(addrs) >= 5
    outside = [hex(a) for a in addrs if not inside(a, ranges)]
    assert not outside, f"buffers outside the segment: {outside}"
    # The reader maps slot data read-only: the frame's bytes are in those pages.
    assert reader.stats()["copies"] == 0


def test_read_arrow_buffers_point_into_the_segment(name):
    writer = SharedDataFrame.create_writer(name, size_mb=64)
    writer.write(sample_frame())
    reader = SharedDataFrame.create_reader(name)
    table = reader.read_arrow()
    assert isinstance(table, pa.Table)
    ranges = shm_ranges(name)
    assert all(inside(a, ranges) for a in buffer_addresses(table))


def test_read_copied_holds_no_lease_and_points_outside_the_segment(name):
    writer = SharedDataFrame.create_writer(name, size_mb=64)
    src = sample_frame(1000)
    writer.write(src)
    reader = SharedDataFrame.create_reader(name)
    df = reader.read_copied()
    assert reader._lease_count() == 0
    ranges = shm_ranges(name)
    addrs = buffer_addresses(df.to_arrow(compat_level=pl.CompatLevel.newest()))
    assert addrs and not any(inside(a, ranges) for a in addrs)
    assert df.equals(src)


def test_lease_returns_only_when_the_last_dataframe_or_series_is_gone(name):
    writer = SharedDataFrame.create_writer(name, size_mb=64)
    writer.write(sample_frame(1000))
    reader = SharedDataFrame.create_reader(name)
    assert reader._lease_count() == 0
    df = reader.read()
    assert reader._lease_count() == 1
    series = df["f"]
    sliced = df.slice(10, 20)
    del df
    gc.collect()
    assert reader._lease_count() == 1, "a Series and a slice still use the frame"
    del sliced
    gc.collect()
    assert reader._lease_count() == 1, "the Series still uses the frame"
    total = float(series.sum())
    del series
    gc.collect()
    assert reader._lease_count() == 0
    assert total > 0


def test_a_native_frame_and_its_capsules_hold_the_lease_until_released(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1, 2, 3]}))
    reader = SharedDataFrame.create_reader(name)
    frame = reader.read_frame()
    assert (frame.seq, frame.num_rows, frame.location) == (1, 3, "shared")
    capsule = frame.__arrow_c_stream__()
    frame.release()
    assert reader._lease_count() == 1, "the unconsumed capsule still holds it"
    del capsule
    gc.collect()
    assert reader._lease_count() == 0
    del frame


def test_to_owned_copies_a_frame_out_of_shared_memory(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]}))
    reader = SharedDataFrame.create_reader(name)
    frame = reader.read_frame()
    owned = frame.to_owned()
    del frame
    gc.collect()
    assert reader._lease_count() == 0
    assert owned.location == "private"
    assert pl.DataFrame(owned)["s"].to_list() == ["x", "y", "z"]


def test_a_writer_reuses_slots_once_readers_drop_their_frames(name):
    writer = SharedDataFrame.create_writer(name, size_mb=3, num_buffers=3)
    reader = SharedDataFrame.create_reader(name)
    for i in range(20):
        writer.write(pl.DataFrame({"a": [i] * 1000}))
        df = reader.read_next(timeout=5)
        assert df["a"][0] == i
        del df
    assert reader._lease_count() == 0
    assert writer.stats()["frames_written"] == 20 or writer.next_seq == 21
