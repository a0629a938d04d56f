"""The Python role of the cross-language matrix (`cargo xtask cross-lang`); same command line as the Rust role
(crates/qadataswap-arrow/examples/crosslang.rs):

    crosslang_role.py write NAME IN.arrows   publish IN's batches as one frame, print READY, close on a stdin line
    crosslang_role.py read NAME OUT.arrows   read the newest frame as pyarrow, check zero-copy, dump it to OUT
"""
import sys

import pyarrow as pa
import pyarrow.ipc

import qadataswap


def buffers(arr):
    """Every non-empty buffer of an array, recursively (children and dictionaries included)."""
    out = [b for b in arr.buffers() if b is not None and b.size > 0]
    if pa.types.is_dictionary(arr.type):
        out += buffers(arr.dictionary)
    return out


def main():
    role, name, path = sys.argv[1], sys.argv[2], sys.argv[3]
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
