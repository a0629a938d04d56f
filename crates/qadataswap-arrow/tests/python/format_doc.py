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
    assert flags & ~0b111 == 0, f"unknown header flag bits {flags:#x}"
    assert not (flags & 2 and flags & 4), "both codecs"
    (reader_entry_size, max_slots) = struct.unpack_from("<II", mm, 72)
    (slot_desc_size,) = struct.unpack_from("<I", mm, 88)
    assert (reader_entry_size, max_slots, slot_desc_size) == (320, 64, 64)
    (state, writer_pid, writer_start_time, generation) = struct.unpack_from("<IIQQ", mm, 128)
    assert state in (1, 2, 3), f"state {state}"
    assert generation >= 1
    (frames_written, bytes_written) = struct.unpack_from("<QQ", mm, 160)
    if version >= 2:
        # §3/§9: the writer role word names the writer that writer_pid repeats (or nobody, after a clean close).
        (writer_claim, writer_pidns) = struct.unpack_from("<QQ", mm, 176)
        assert (writer_claim >> 42) == writer_pid, (hex(writer_claim), writer_pid)
        assert writer_claim == 0 or (writer_claim & 0xFFFFFFFF) == (writer_start_time & 0xFFFFFFFF)
    (total_size, mode, slot_count, slot_capacity, reader_capacity, schema_capacity) = struct.unpack_from("<QIIQII", mm, 24)
    assert total_size == len(mm)
    assert mode == 1, "snapshot mode"
    assert 1 <= slot_count <= 64 and slot_capacity > 0 and slot_capacity % 64 == 0
    assert 1 <= reader_capacity <= 4096 and schema_capacity % 64 == 0
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
    (seq, desc_frame_seq, schema_version, length, num_rows, write_ns, num_batches) = struct.unpack_from(
        "<QQQQQQI", mm, desc
    )
    (slot_flags,) = struct.unpack_from("<I", mm, desc + 56)
    assert seq == 2 * frame_seq, (seq, frame_seq)
    assert desc_frame_seq == frame_seq
    assert 8 <= length <= slot_capacity
    assert slot_flags & ~1 == 0, f"unknown slot flag bits {slot_flags:#x}"
    assert frames_written >= 1 and bytes_written >= length
    start = data_offset + slot * slot_capacity
    assert start % 64 == 0, "§6: slots start on a 64-byte boundary"
    # §6: the slot is an Arrow IPC stream: Schema, then each batch's dictionaries before it, then the end marker.
    buf = pa.py_buffer(mm[start:start + length])
    kinds = [m.type for m in pa.ipc.MessageReader.open_stream(buf)]
    assert kinds[0] == "schema" and "schema" not in kinds[1:], kinds
    assert kinds.count("record batch") == num_batches, (kinds, num_batches)
    assert kinds[-1] == "record batch", kinds
    # The test's frame is two batches whose dictionary columns differ: the second batch's dictionaries come between
    # the two record batches and replace the first ones (§6).
    first_rb = kinds.index("record batch")
    assert "dictionary" in kinds[:first_rb] and "dictionary" in kinds[first_rb + 1:], kinds
    assert bytes(mm[start + length - 8:start + length]) == b"\xff\xff\xff\xff\x00\x00\x00\x00", "end marker"
    table = pa.ipc.open_stream(buf).read_all()
    assert table.num_rows == num_rows
    # §10: the schema area holds the same schema, with its checksum (version 2)
    (schema_len, schema_checksum) = struct.unpack_from("<QQ", mm, 400)
    assert 8 <= schema_len <= schema_capacity
    area = bytes(mm[schema_offset:schema_offset + schema_len])
    if version >= 2:
        h = 0xCBF29CE484222325
        for b in area:
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        assert h == schema_checksum, (hex(h), hex(schema_checksum))
    schema = pa.ipc.read_schema(pa.py_buffer(area))
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
