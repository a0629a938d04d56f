"""`qadataswap serve` and `qadataswap relay` driven by `pyarrow.flight` clients, on the loopback interface only.

Every gateway and relay is a separate process: the `qadataswap` binary named by QADATASWAP_CLI (`cargo xtask test`
sets it to the workspace's build), else `python -m qadataswap` if that build has Flight (the wheel's tool leaves it
out, and says so: then these tests are skipped, saying why). Readiness is a line on stdout (`listening on
grpc://127.0.0.1:PORT`, the port chosen by the kernel), never a sleep; each process is stopped at the end.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from qadataswap import SharedDataFrame, SharedDataStream


def cli(*args: str) -> list[str]:
    exe = os.environ.get("QADATASWAP_CLI")
    return ([exe] if exe else [sys.executable, "-m", "qadataswap"]) + list(args)


def _has_flight() -> bool:
    r = subprocess.run(cli("serve", "--help"), capture_output=True, text=True, timeout=120)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(
    not os.environ.get("QADATASWAP_CLI") and not _has_flight(),
    reason="this qadataswap tool has no Flight (the wheel's); set QADATASWAP_CLI to a build with it "
    "(cargo xtask test does)",
)


class Proc:
    """A tool process whose first stdout line says it is ready."""

    def __init__(self, *args: str, ready: str, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if r else ""
        if not line.startswith(ready):
            self.proc.kill()
            raise AssertionError(f"{args[0]} said {line!r}, expected {ready!r}; stderr: {self.proc.stderr.read()}")
        self.line = line

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


class Gateway(Proc):
    def __init__(self, token: Path, port: int = 0) -> None:
        super().__init__("serve", "--bind", f"127.0.0.1:{port}", "--token-file", str(token), ready="listening on")
        self.port = int(self.line.rsplit(":", 1)[1])
        self.location = f"grpc://127.0.0.1:{self.port}"


@pytest.fixture
def token(tmp_path):
    p = tmp_path / "token"
    p.write_text("t0k3n-for-tests\n")
    p.chmod(0o600)
    return p


@pytest.fixture
def names(name):
    """`name` and the names derived from it (`name-a`...), removed afterwards if a test left them behind."""
    yield name
    for suffix in ("-a", "-b", "-s", "-big"):
        try:
            os.unlink(f"/dev/shm/{name}{suffix}")
        except FileNotFoundError:
            pass


@pytest.fixture
def gateway(token):
    g = Gateway(token)
    yield g
    g.stop()


OPTS = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer t0k3n-for-tests")])


def client(g: Gateway) -> fl.FlightClient:
    return fl.connect(g.location)


def seqs(chunks) -> list[int]:
    return [int(dict(p.split("=") for p in c.app_metadata.to_pybytes().decode().split(";"))["seq"]) for c in chunks]


def test_a_client_without_the_token_is_refused_with_unauthenticated(gateway):
    c = client(gateway)
    with pytest.raises(fl.FlightUnauthenticatedError, match="bearer token"):
        list(c.list_flights())
    wrong = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer nope")])
    with pytest.raises(fl.FlightUnauthenticatedError):
        c.do_get(fl.Ticket(b"anything"), wrong).read_all()


def test_a_token_file_others_can_read_is_refused_at_start(tmp_path):
    p = tmp_path / "token"
    p.write_text("x")
    p.chmod(0o644)
    r = subprocess.run(cli("serve", "--bind", "127.0.0.1:0", "--token-file", str(p)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "chmod 600" in r.stderr, r.stderr


def test_list_info_schema_and_get_latest_describe_and_send_the_newest_frame(gateway, name):
    w = SharedDataFrame.create_writer(name, size_mb=8)
    df = pl.DataFrame({"x": list(range(1000)), "y": [0.5] * 1000})
    w.write(df.head(10))
    w.write(df)
    c = client(gateway)
    listed = {f.descriptor.path[0].decode(): f for f in c.list_flights(options=OPTS)}
    assert listed[name].total_records == 1000
    info = c.get_flight_info(fl.FlightDescriptor.for_path(name), OPTS)
    assert info.schema.names == ["x", "y"]
    assert b"mode=snapshot" in info.app_metadata
    assert c.get_schema(fl.FlightDescriptor.for_path(name), OPTS).schema.names == ["x", "y"]
    got = c.do_get(info.endpoints[0].ticket, OPTS).read_all()
    assert pl.from_arrow(got).equals(df)
    with pytest.raises(KeyError, match="does not exist"):  # NotFound is a KeyError in pyarrow
        c.do_get(fl.Ticket(b"qads-no-such-segment"), OPTS).read_all()
    with pytest.raises(pa.ArrowInvalid, match="unknown ticket option"):
        c.do_get(fl.Ticket(f"{name}?bogus".encode()), OPTS).read_all()
    w.close()


def test_next_waits_for_a_new_frame_and_follow_sends_each_until_the_writer_closes(gateway, name):
    w = SharedDataFrame.create_writer(name, size_mb=8)
    w.write(pl.DataFrame({"v": [0]}))
    c = client(gateway)
    got = {}
    t = threading.Thread(target=lambda: got.update(t=c.do_get(fl.Ticket(f"{name}?next&timeout=30".encode()), OPTS).read_all()))
    t.start()
    # `next` waits for a frame newer than the one published when the call arrives, which this thread cannot see:
    # publish until the call returns.
    v = 1
    while t.is_alive() and v < 10_000:
        w.write(pl.DataFrame({"v": [v]}))
        v += 1
        t.join(0.02)
    assert got["t"].column("v")[0].as_py() >= 1

    reader = c.do_get(fl.Ticket(f"{name}?follow".encode()), OPTS)
    first = reader.read_chunk()
    values = [first.data.column(0)[0].as_py()]
    for v in range(10, 15):
        w.write(pl.DataFrame({"v": [v]}))
        values.append(reader.read_chunk().data.column(0)[0].as_py())
    w.close()
    with pytest.raises(StopIteration):
        reader.read_chunk()
    assert values[1:] == list(range(10, 15))


def test_a_stream_is_followed_in_order_to_its_end_and_a_paused_client_holds_the_writer_back(gateway, name):
    n, rows = 40, 250_000  # 2 MB chunks: far more than gRPC and TCP buffer, so a paused client stalls the writer
    written = []
    w = SharedDataStream.create_writer(name, size_mb=8, num_buffers=3, timeout=30.0)

    def write():
        for i in range(1, n + 1):
            w.write_chunk(pl.DataFrame({"seq": [i] * rows}))
            written.append(i)
        w.finish()

    t = threading.Thread(target=write)
    t.start()
    reader = client(gateway).do_get(fl.Ticket(name.encode()), OPTS)
    got = [reader.read_chunk()]
    # The client stops reading: the writer must stop well short of the end (the ring is 3 slots of 2.7 MB).
    t.join(1.0)
    assert t.is_alive() and len(written) < n
    for chunk in reader:
        got.append(chunk)
    t.join(30)
    assert seqs(got) == list(range(1, n + 1))
    assert [c.data.column(0)[0].as_py() for c in got] == list(range(1, n + 1))
    assert all(c.data.num_rows == rows for c in got)


def test_put_writes_a_snapshot_and_a_stream_and_oversized_frames_get_the_local_error(gateway, names):
    name = names
    c = client(gateway)
    table = pa.table({"a": list(range(100))})
    writer, _ = c.do_put(fl.FlightDescriptor.for_path(name), table.schema, OPTS)
    writer.write_table(table)
    writer.close()
    assert SharedDataFrame.create_reader(name).read()["a"].to_list() == list(range(100))
    SharedDataFrame.unlink(name)

    stream = f"{name}-s"
    desc = fl.FlightDescriptor.for_command(f"{stream}?mode=stream&size_mb=4".encode())
    reader_box = {}

    def read():
        r = SharedDataStream.create_reader(stream, open_timeout=30)
        reader_box["chunks"] = [df["a"].to_list() for df in r.iter_chunks()]

    t = threading.Thread(target=read)
    t.start()
    writer, _ = c.do_put(desc, table.schema, OPTS)
    for i in range(5):
        writer.write_table(pa.table({"a": [i]}))
    writer.close()
    t.join(30)
    assert reader_box["chunks"] == [[i] for i in range(5)]

    big = pa.table({"a": list(range(2_000_000))})  # 16 MB into 1 MB slots
    writer, _ = c.do_put(fl.FlightDescriptor.for_command(f"{name}-big?size_mb=1".encode()), big.schema, OPTS)
    with pytest.raises(pa.ArrowException, match="slot"):
        writer.write_table(big)
        writer.close()
    SharedDataFrame.unlink(f"{name}-big", force=True)


def test_a_relay_mirrors_a_stream_and_resumes_after_the_gateway_is_killed_and_restarted(token, names):
    name = names
    src, dst = f"{name}-a", f"{name}-b"
    a = Gateway(token)
    w = SharedDataStream.create_writer(src, size_mb=8, num_buffers=64, timeout=30.0)
    relay = Proc(
        "relay", f"flight://127.0.0.1:{a.port}/{src}", dst, "--token-file", str(token), "--give-up-after", "60",
        ready="relaying",
    )
    got: list[int] = []
    done = threading.Event()
    progress = threading.Condition()

    def read():
        r = SharedDataStream.create_reader(dst, open_timeout=60, timeout=60)
        for df in r.iter_chunks():
            with progress:
                got.append(df["seq"][0])
                progress.notify_all()
        done.set()

    def wait_for(k: int):
        with progress:
            assert progress.wait_for(lambda: len(got) >= k, 60), got

    t = threading.Thread(target=read)
    t.start()
    try:
        for i in range(1, 11):
            w.write_chunk(pl.DataFrame({"seq": [i] * 1000}))
        wait_for(10)
        a.stop(signal.SIGKILL)
        for i in range(11, 21):  # written while the gateway is down: the relay must not miss them
            w.write_chunk(pl.DataFrame({"seq": [i] * 1000}))
        a = Gateway(token, port=a.port)
        for i in range(21, 31):
            w.write_chunk(pl.DataFrame({"seq": [i] * 1000}))
        wait_for(30)
        w.finish()
        assert done.wait(60)
        assert relay.wait(60) == 0, relay.proc.stderr.read()
        assert got == list(range(1, 31))  # no duplicate, no gap
        assert "reconnecting" in relay.proc.stderr.read()  # it did lose the gateway on the way
    finally:
        a.stop()
        relay.stop(signal.SIGKILL)
        t.join(5)


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway certificate authority and a certificate for 127.0.0.1 signed by it (openssl)."""
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60)  # noqa: E731
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "key.pem", "req.csr", "cert.pem"))
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key),
        "-out", str(ca), "-days", "1", "-subj", "/CN=qadataswap test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "1", "-extfile", str(ext))
    return ca, cert, key


@pytest.mark.skipif(not any((Path(p) / "openssl").exists() for p in os.environ.get("PATH", "").split(":")),
                    reason="needs the openssl tool to make a test certificate")
def test_tls_serves_a_client_that_trusts_the_authority_and_a_relay_reads_through_it(token, tmp_path, names):
    name = names
    ca, cert, key = make_certs(tmp_path)
    g = Proc("serve", "--bind", "127.0.0.1:0", "--token-file", str(token), "--tls-cert", str(cert), "--tls-key",
             str(key), ready="listening on grpc+tls://")
    port = int(g.line.rsplit(":", 1)[1])
    try:
        w = SharedDataFrame.create_writer(name, size_mb=4)
        w.write(pl.DataFrame({"v": [7]}))
        c = fl.connect(f"grpc+tls://127.0.0.1:{port}", tls_root_certs=ca.read_bytes())
        assert c.do_get(fl.Ticket(name.encode()), OPTS).read_all().column("v")[0].as_py() == 7
        plain = fl.connect(f"grpc://127.0.0.1:{port}")
        quick = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer t0k3n-for-tests")], timeout=10)
        with pytest.raises(pa.ArrowException):  # plaintext to a TLS port
            plain.do_get(fl.Ticket(name.encode()), quick).read_all()

        relay = Proc("relay", f"flights://127.0.0.1:{port}/{name}", f"{name}-b", "--token-file", str(token),
                     "--tls-ca", str(ca), "--give-up-after", "30", ready="relaying")
        try:
            r = SharedDataFrame.create_reader(f"{name}-b", open_timeout=30)
            assert r.read()["v"].to_list() == [7]
            w.close()  # the remote writer closes: the relay closes its local writer and ends
            assert relay.wait(30) == 0, relay.proc.stderr.read()
        finally:
            relay.stop(signal.SIGKILL)
    finally:
        g.stop()


def test_the_stream_and_message_limits_refuse_with_errors_that_name_them(token, name):
    g = Proc("serve", "--bind", "127.0.0.1:0", "--token-file", str(token), "--max-streams", "1",
             "--max-message-mb", "1", ready="listening on")
    port = int(g.line.rsplit(":", 1)[1])
    try:
        w = SharedDataFrame.create_writer(name, size_mb=8)
        w.write(pl.DataFrame({"v": list(range(250_000))}))  # 2 MB: over the 1 MiB message limit
        c = fl.connect(f"grpc://127.0.0.1:{port}")
        with pytest.raises(pa.ArrowException, match="max-message-mb"):
            c.do_get(fl.Ticket(name.encode()), OPTS).read_all()
        w.write(pl.DataFrame({"v": [1]}))
        held = c.do_get(fl.Ticket(f"{name}?follow".encode()), OPTS)  # holds the only stream
        held.read_chunk()
        with pytest.raises(pa.ArrowException, match="max-streams"):
            c.do_get(fl.Ticket(name.encode()), OPTS).read_all()
        w.close()
    finally:
        g.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a segment to another uid")
def test_a_segment_of_another_uid_is_neither_listed_nor_served(gateway, name):
    w = SharedDataFrame.create_writer(name, size_mb=1)
    w.write(pl.DataFrame({"v": [1]}))
    os.chown(f"/dev/shm/{name}", 65534, -1)
    try:
        c = client(gateway)
        assert name not in [f.descriptor.path[0].decode() for f in c.list_flights(options=OPTS)]
        with pytest.raises(pa.ArrowException, match="not served"):
            c.do_get(fl.Ticket(name.encode()), OPTS).read_all()
    finally:
        os.chown(f"/dev/shm/{name}", 0, -1)
        w.close()


def test_a_relay_that_missed_chunks_the_ring_dropped_stops_with_an_error_naming_them(token, names):
    name = names
    src, dst = f"{name}-a", f"{name}-b"
    a = Gateway(token)
    w = SharedDataStream.create_writer(src, size_mb=1, num_buffers=4, timeout=30.0)
    relay = Proc("relay", f"flight://127.0.0.1:{a.port}/{src}", dst, "--token-file", str(token),
                 "--give-up-after", "60", ready="relaying")
    try:
        r = None
        first = threading.Thread(target=lambda: w.write_chunk(pl.DataFrame({"seq": [1]})))
        first.start()
        r = SharedDataStream.create_reader(dst, open_timeout=60, timeout=60)
        assert r.next_chunk()["seq"].to_list() == [1]
        first.join(60)
        a.stop(signal.SIGKILL)
        for i in range(2, 12):  # 10 chunks into a 4-slot ring with no reader: chunks 2 to 7 are gone
            w.write_chunk(pl.DataFrame({"seq": [i]}))
        a = Gateway(token, port=a.port)
        assert relay.wait(60) == 1
        err = relay.proc.stderr.read()
        assert "chunks 2 to 7" in err, err
    finally:
        a.stop()
        relay.stop(signal.SIGKILL)
        w.close()


def test_a_relay_marks_its_segment_and_sigterm_closes_it_instead_of_leaving_it_stale(gateway, token, names):
    name = names
    w = SharedDataFrame.create_writer(f"{name}-a", size_mb=1)
    w.write(pl.DataFrame({"v": [1]}))
    relay = Proc("relay", f"flight://127.0.0.1:{gateway.port}/{name}-a", f"{name}-b", "--token-file", str(token),
                 ready="relaying")
    try:
        r = SharedDataFrame.create_reader(f"{name}-b", open_timeout=30)
        assert r.read()["v"].to_list() == [1]
        # The relayed segment says whose copy it is: its writer is the relay of that remote segment.
        schema = client(gateway).get_schema(fl.FlightDescriptor.for_path(f"{name}-b"), OPTS).schema
        assert schema.metadata[b"qadataswap.relay.source"] == f"flight://127.0.0.1:{gateway.port}/{name}-a".encode()
        assert relay.stop(signal.SIGTERM) == 1
        assert "stopped by a signal" in relay.proc.stderr.read()
        assert not os.path.exists(f"/dev/shm/{name}-b")  # closed by its writer, not left for gc
    finally:
        relay.stop(signal.SIGKILL)
        w.close()


def test_a_segment_recreated_under_its_name_is_read_anew_not_from_the_gateways_kept_reader(gateway, name):
    c = client(gateway)
    for v in (1, 2, 3):
        w = SharedDataFrame.create_writer(name, size_mb=1)
        w.write(pl.DataFrame({"v": [v]}))
        assert c.do_get(fl.Ticket(name.encode()), OPTS).read_all().column("v")[0].as_py() == v
        w.close()  # unlinks the name: the next writer makes a new file


def test_nested_dictionary_view_decimal_run_end_and_union_columns_round_trip_through_put_and_get(gateway, name):
    # The gateway sends a frame's own IPC messages (dictionaries included) and DoPut writes what the client decoded:
    # every layout arrives with its exact values, both ways, and the local reader sees the same table.
    import decimal

    c = client(gateway)
    t = pa.table(
        {
            "dict": pa.array(["a", "b", None, "a", "c"]).dictionary_encode(),
            "struct": pa.array([{"x": 1, "y": "s"}, None, {"x": 3, "y": None}, {"x": 4, "y": "t"}, {"x": 5, "y": "u"}]),
            "list": pa.array([[1, 2], [], None, [3], [4, 5, 6]], pa.list_(pa.int32())),
            "view": pa.array(["a string longer than twelve bytes", "b", None, "c", "d"], pa.string_view()),
            "dec256": pa.array(
                [decimal.Decimal("1.5"), None, decimal.Decimal("-2.25"), decimal.Decimal("0"), decimal.Decimal("9.99")],
                pa.decimal256(40, 2),
            ),
            "ree": pa.RunEndEncodedArray.from_arrays([2, 5], pa.array([7, 8], pa.int64())),
            "union": pa.UnionArray.from_sparse(
                pa.array([0, 1, 0, 1, 0], pa.int8()), [pa.array([1, 2, 3, 4, 5]), pa.array(["a", "b", "c", "d", "e"])]
            ),
            "ts": pa.array([1, 2, 3, None, 5], pa.timestamp("ns", tz="UTC")),
        }
    )
    writer, _ = c.do_put(fl.FlightDescriptor.for_path(name), t.schema, OPTS)
    writer.write_table(t)
    writer.close()
    got = c.do_get(fl.Ticket(name.encode()), OPTS).read_all()
    assert got.equals(t), [col for col in t.column_names if not got.column(col).equals(t.column(col))]
    r = SharedDataFrame.create_reader(name)
    assert r.read_arrow().equals(t)
    r.close()  # the gateway keeps its reader a while (idle timeout); the `name` fixture removes the segment


def test_a_put_to_another_programs_file_is_refused_and_the_file_is_left_as_it_was(gateway, name):
    path = Path(f"/dev/shm/{name}")
    path.write_bytes(b"\0" * 65536)  # another application's pool under the name: no magic
    c = client(gateway)
    t = pa.table({"a": [1, 2]})
    with pytest.raises(fl.FlightError, match="magic"):
        writer, _ = c.do_put(fl.FlightDescriptor.for_path(name), t.schema, OPTS)
        writer.write_table(t)
        writer.close()
    assert path.stat().st_size == 65536 and path.read_bytes() == b"\0" * 65536
