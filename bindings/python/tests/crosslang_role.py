"""The Python role of the cross-language matrix (`cargo xtask cross-lang`); same command line as the Rust role
(crates/qadataswap-stream/examples/crosslang.rs):

    crosslang_role.py write NAME IN.arrows   publish IN's batches as one frame, print READY, close on a stdin line
    crosslang_role.py read NAME OUT.arrows   read the newest frame as pyarrow, check zero-copy, dump it to OUT
    crosslang_role.py stream-write NAME N [SLOTS]   create stream NAME, print READY, wait for 3 readers, write N
                                                    chunks (see stream_chunk), finish
    crosslang_role.py stream-read NAME              read every chunk in order, check number, content, zero-copy;
                                                    print "STREAM chunks=N ok"
"""
import sys
import time

import pyarrow as pa
import pyarrow.ipc

import qadataswap


def buffers(arr):
    """Every non-empty buffer of an array, recursively (children and dictionaries included)."""
    out = [b for b in arr.buffers() if b is not None and b.size > 0]
    if pa.types.is_dictionary(arr.type):
        out += buffers(arr.dictionary)
    return out


def stream_chunk(k):
    """Chunk k (0-based; stream number k + 1), as in the Rust role: 100 + k % 5 rows, k = k, v = k * 1000 + row,
    s (utf8view) = "chunk-{k}-row-{row}-payload"; no field nullable."""
    rows = 100 + k % 5
    return pa.table(
        [
            pa.array([k] * rows, pa.int64()),
            pa.array([k * 1000 + r for r in range(rows)], pa.int64()),
            pa.array([f"chunk-{k}-row-{r}-payload" for r in range(rows)], pa.string_view()),
        ],
        schema=STREAM_SCHEMA,
    )


#: The stream roles' schema: no field is nullable (as arrow-rs' RecordBatch::try_from_iter makes it).
STREAM_SCHEMA = pa.schema(
    [pa.field("k", pa.int64(), False), pa.field("v", pa.int64(), False), pa.field("s", pa.string_view(), False)]
)


def segment_ranges(name):
    """Address ranges where /dev/shm/NAME is mapped in this process (also after the name was unlinked)."""
    out = []
    path = "/dev/shm/" + name
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() in (path, path + " (deleted)"):
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def stream_write(name, n, slots):
    writer = qadataswap.SharedDataStream.create_writer(
        name, size=slots << 20, num_buffers=slots, timeout=30, retry_count=0
    )
    print("READY", flush=True)
    have = writer.wait_for_readers(3, 30)
    if have < 3:
        sys.exit(f"only {have} of 3 readers attached within 30 s")
    start = time.monotonic()
    for k in range(n):
        info = writer.write_chunk(stream_chunk(k))
        if info.seq != k + 1:
            sys.exit(f"chunk {k} got number {info.seq}, expected {k + 1}")
    writer.finish()
    ms = (time.monotonic() - start) * 1e3
    print(f"STREAM-WRITE chunks={n} readers={have} lease_waits={writer.stats().get('lease_waits')} ({ms:.0f} ms)")
    writer.close()


def stream_read(name):
    reader = qadataswap.SharedDataStream.create_reader(name, timeout=30)
    ranges = segment_ranges(name)
    expected = inside = outside = 0
    while True:
        frame = reader.next_frame(timeout=30)
        if frame is None:
            break
        if frame.seq != expected + 1:
            sys.exit(f"got chunk number {frame.seq}, expected {expected + 1}")
        table = pa.table(frame)
        want = stream_chunk(expected)
        if not table.equals(want, check_metadata=False) or table.schema != want.schema:
            sys.exit(f"chunk {frame.seq} differs: {table.schema} {table.slice(0, 2)}")
        if len(table.to_batches()) != 1:
            sys.exit(f"chunk {frame.seq}: {len(table.to_batches())} batches, expected 1")
        for column in table.columns:
            for chunk in column.chunks:
                for b in buffers(chunk):
                    if any(lo <= b.address and b.address + b.size <= hi for lo, hi in ranges):
                        inside += 1
                    else:
                        outside += 1
        # Drop the chunk (and its lease) before reading on: a reader keeps at most num_buffers - 1 alive.
        del table, frame, chunk, column
        expected += 1
    if not reader.finished:
        sys.exit("the stream did not end cleanly")
    print(f"STREAM chunks={expected} ok zero_copy_buffers={inside} copied_buffers={outside}")
    if outside:
        sys.exit(f"{outside} buffers do not point into the segment")


def main():
    role, name = sys.argv[1], sys.argv[2]
    if role == "stream-write":
        stream_write(name, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 4)
        return
    if role == "stream-read":
        stream_read(name)
        return
    path = sys.argv[3]
    if role == "write":
        with open(path, "rb") as f:
            table = pa.ipc.open_stream(f.read()).read_all()
        writer = qadataswap.SharedDataFrame.create_writer(name, size_mb=48)
        info = writer.write(table)
        print(f"READY seq={info.seq} bytes={info.bytes}", flush=True)
        sys.stdin.readline()
        writer.close()
    elif role == "read":
        reader = qadataswap.SharedDataFrame.create_reader(name)
        table = reader.read_arrow(timeout=20)
        start, end = reader._segment_range()
        inside = outside = 0
        unchecked = []
        for i, field in enumerate(table.schema):
            column = table.column(i)
            try:
                chunks = column.chunks
            except KeyError:
                # pyarrow has no Python array class for some types (day-time intervals): their buffers cannot be
                # looked at from Python. The Rust and C++ readers check them.
                unchecked.append(field.name)
                continue
            for chunk in chunks:
                for b in buffers(chunk):
                    if start <= b.address and b.address + b.size <= end:
                        inside += 1
                    else:
                        outside += 1
        with open(path, "wb") as f:
            with pa.ipc.new_stream(f, table.schema) as w:
                for batch in table.to_batches():
                    w.write_batch(batch)
        print(f"READ seq={reader.last_seq} batches={len(table.to_batches())} rows={table.num_rows} "
              f"zero_copy_buffers={inside} copied_buffers={outside} unchecked_columns={unchecked}")
        if outside:
            sys.exit(f"{outside} buffers do not point into the segment")
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main()
