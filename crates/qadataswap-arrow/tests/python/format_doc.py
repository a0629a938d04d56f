"""Decode the newest frame of a qadataswap segment using only docs/FORMAT.md: struct + mmap + pyarrow.

No qadataswap code is imported. Usage: format_doc.py SEGMENT_NAME EXPECTED_ARROW_FILE
Prints "OK <frame_seq> <rows>" when the frame equals the expected table, exits 1 otherwise.
"""
import mmap
import struct
import sys

import pyarrow as pa
import pyarrow.ipc


def read_newest(name):
    with open(f"/dev/shm/{name}", "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    # §3 header
    magic = mm[0:8]
    assert magic == b"QADSWAP\0", f"bad magic {magic!r}"
    (version, abi, header_size, flags) = struct.unpack_from("<IIII", mm, 8)
    assert version in (1, 2), f"format version {version}"
    assert abi == 0x40040801, hex(abi)
    assert header_size == 4096
    (total_size, mode, slot_count, slot_capacity, reader_capacity, schema_capacity) = struct.unpack_from("<QIIQII", mm, 24)
    assert total_size == len(mm)
    assert mode == 1, "snapshot mode"
    (slot_table_offset,) = struct.unpack_from("<Q", mm, 80)
    (data_offset,) = struct.unpack_from("<Q", mm, 104)
    # §2 geometry, recomputed
    align = lambda v, a: (v + a - 1) // a * a
    assert slot_table_offset == align(4096 + reader_capacity * 320, 4096)
    schema_offset = slot_table_offset + slot_count * 64
    assert data_offset == align(schema_offset + schema_capacity, 4096)
    # §8 reader steps 1 and 3 (no lease needed: the writer of this test is idle)
    (published,) = struct.unpack_from("<Q", mm, 192)
    assert published != 0, "nothing published"
    frame_seq, slot = published >> 8, published & 0xFF
    desc = slot_table_offset + slot * 64
    (seq, desc_frame_seq, schema_version, length, num_rows) = struct.unpack_from("<QQQQQ", mm, desc)
    assert seq == 2 * frame_seq, (seq, frame_seq)
    assert desc_frame_seq == frame_seq
    assert 8 <= length <= slot_capacity
    start = data_offset + slot * slot_capacity
    # §6: the slot is an Arrow IPC stream
    table = pa.ipc.open_stream(pa.py_buffer(mm[start:start + length])).read_all()
    # §10: the schema area holds the same schema
    (schema_len,) = struct.unpack_from("<Q", mm, 400)
    schema = pa.ipc.read_schema(pa.py_buffer(mm[schema_offset:schema_offset + schema_len]))
    assert schema.equals(table.schema, check_metadata=True), (schema, table.schema)
    return frame_seq, num_rows, table


def main():
    name, expected_path = sys.argv[1], sys.argv[2]
    frame_seq, num_rows, table = read_newest(name)
    with open(expected_path, "rb") as f:
        expected = pa.ipc.open_stream(f.read()).read_all()
    if not table.equals(expected, check_metadata=True):
        print("MISMATCH", table.schema, expected.schema, file=sys.stderr)
        sys.exit(1)
    assert table.num_rows == num_rows
    print(f"OK {frame_seq} {num_rows}")


if __name__ == "__main__":
    main()
