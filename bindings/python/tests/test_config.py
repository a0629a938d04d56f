"""qadataswap.yaml on both paths (issue 17): snapshot and stream writers take what they are not given from the
configuration, found as documented (``config=``, then ``$QADATASWAP_CONFIG``, then ``./qadataswap.yaml``, then the
``QADATASWAP_*`` variables); what the call gives wins; a broken stray file names itself in the error. The working
directory and environment cases run in a fresh interpreter, so that this process's environment never changes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from qadataswap import InvalidConfigError, SharedDataFrame, SharedDataStream

FIVE = "memory:\n  size_mb: 5\n  num_buffers: 5\n"


def yaml_in(tmp_path, text: str, filename: str = "qadataswap.yaml"):
    path = tmp_path / filename
    path.write_text(text)
    return path


def test_a_snapshot_writer_takes_size_and_slots_from_an_explicit_file(tmp_path, name):
    w = SharedDataFrame.create_writer(name, config=yaml_in(tmp_path, FIVE))
    assert w.num_buffers == 5
    assert w.slot_capacity * 5 == 5 << 20
    w.close()


def test_what_the_call_gives_wins_over_the_file(tmp_path, name):
    w = SharedDataFrame.create_writer(name, size_mb=1, num_buffers=2, config=yaml_in(tmp_path, FIVE))
    assert w.num_buffers == 2
    assert w.slot_capacity * 2 == 1 << 20
    w.close()


def test_a_stream_writer_takes_its_size_from_the_file_too(tmp_path, name):
    with SharedDataStream.create_writer(name, min_readers=0, config=yaml_in(tmp_path, FIVE)) as w:
        r = SharedDataStream.create_reader(name)
        w.write_chunk(pl.DataFrame({"a": [1]}))
        assert r.next_chunk(timeout=10)["a"].to_list() == [1]
        r.close()


@pytest.mark.parametrize("create", [SharedDataFrame.create_writer, SharedDataStream.create_writer])
def test_a_broken_file_raises_invalid_config_naming_the_file_and_the_key(tmp_path, name, create):
    path = yaml_in(tmp_path, "memory:\n  num_bufers: 4\n")
    with pytest.raises(InvalidConfigError) as e:
        create(name, config=path)
    assert str(path) in str(e.value) and "memory.num_bufers" in str(e.value)
    assert not os.path.exists(f"/dev/shm/{name}")


def test_config_must_be_a_path(name):
    with pytest.raises(InvalidConfigError, match="config must be a path"):
        SharedDataFrame.create_writer(name, config=42)


def run_fresh(cwd, name: str, env: dict[str, str]) -> str:
    code = textwrap.dedent(
        f"""
        from qadataswap import SharedDataFrame, InvalidConfigError
        try:
            w = SharedDataFrame.create_writer({name!r})
            print("SLOTS", w.num_buffers, w.slot_capacity * w.num_buffers)
            w.close()
        except InvalidConfigError as e:
            print("ERROR", e)
        """
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QADATASWAP_")}
    full_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_working_directory_file_then_the_variable_then_the_per_key_variables(tmp_path, name):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    yaml_in(cwd, FIVE)
    assert run_fresh(cwd, name, {}) == f"SLOTS 5 {5 << 20}"
    other = yaml_in(tmp_path, "memory:\n  num_buffers: 7\n  size_mb: 7\n", "other.yaml")
    assert run_fresh(cwd, name, {"QADATASWAP_CONFIG": str(other)}) == f"SLOTS 7 {7 << 20}"
    assert run_fresh(cwd, name, {"QADATASWAP_MEMORY_NUM_BUFFERS": "4"}).startswith("SLOTS 4 ")
    empty = tmp_path / "empty"
    empty.mkdir()
    per_slot = (64 << 20) // 3 // 64 * 64  # slots are whole multiples of 64 bytes
    assert run_fresh(empty, name, {}) == f"SLOTS 3 {3 * per_slot}", "the built-in defaults: 64 MiB in 3 slots"


def test_a_broken_stray_file_in_the_working_directory_names_itself(tmp_path, name):
    stray = yaml_in(tmp_path, "sync: [1, 2]\n")
    answer = run_fresh(tmp_path, name, {})
    assert answer.startswith("ERROR ") and str(stray) in answer and "sync" in answer, answer
