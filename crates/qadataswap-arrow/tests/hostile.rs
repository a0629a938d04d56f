//! Hostile and corrupt segments (docs/VALIDATION.md, reliability R6, R7, R11, R13, and the read-only data pages):
//! patched headers, half-built and foreign segments, and a process flipping bytes under a reader. The flipper is
//! this test binary re-executed with `QADS_HOSTILE_ROLE=flipper`.

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewArray};
use qadataswap_arrow::format;
use qadataswap_arrow::golden::Lcg;
use qadataswap_arrow::layout::{self, Geometry, Mode};
use qadataswap_arrow::{
    classify, Error, SegmentStatus, SnapshotReader, SnapshotWriter, Validation,
};
use qadataswap_sync::process::ProcessIdentity;

const ROLE: &str = "QADS_HOSTILE_ROLE";
const NAME: &str = "QADS_HOSTILE_NAME";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(tag: &str) -> String {
    format!(
        "qads-h-{}-{tag}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

/// Removes the file at the end of a test, whatever happened.
struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(path(&self.0));
    }
}

fn patch(name: &str, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path(name))
        .unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// A pid that belonged to a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn small_batch(seq: i64) -> RecordBatch {
    let x: ArrayRef = Arc::new(Int64Array::from(vec![seq; 64]));
    RecordBatch::try_from_iter([("x", x)]).unwrap()
}

/// The (start, end, perms) of every line of /proc/self/maps backed by `file`.
fn maps_of(file: &str) -> Vec<(usize, usize, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.ends_with(file))
        .map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next().unwrap();
            let perms = it.next().unwrap().to_owned();
            let (a, b) = range.split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
                perms,
            )
        })
        .collect()
}

#[test]
fn readers_map_the_data_pages_read_only_and_only_the_control_pages_writable() {
    let name = unique("maps");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&small_batch(1)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let _f = r.read().unwrap();
    let shared = r.attachment().shared();
    let geo = *shared.geometry();
    let base = shared.mapping().as_ptr() as usize;
    let (ro_start, end) = (base + geo.slot_table_offset, base + geo.total_size);
    let lines: Vec<_> = maps_of(&path(&name))
        .into_iter()
        .filter(|&(a, b, _)| a < end && b > base)
        .collect();
    assert!(
        !lines.is_empty(),
        "the reader's mapping is not in /proc/self/maps"
    );
    let mut covered_ro = 0;
    for (a, b, perms) in &lines {
        if *a >= ro_start {
            assert_eq!(
                perms, "r--s",
                "data range {a:#x}-{b:#x} of the reader is {perms}"
            );
            covered_ro += b.min(&end) - a;
        } else {
            assert!(
                *b <= ro_start,
                "a mapping line straddles the read-only boundary"
            );
            assert_eq!(
                perms, "rw-s",
                "control range {a:#x}-{b:#x} of the reader is {perms}"
            );
        }
    }
    assert_eq!(
        covered_ro,
        end - ro_start,
        "the whole data range is mapped read-only"
    );
}

#[test]
fn a_reader_writes_only_its_own_entry_and_the_waiter_words() {
    let name = unique("writes");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&small_batch(1)).unwrap();
    let before = std::fs::read(path(&name)).unwrap();

    let r = SnapshotReader::builder(&name).spin(0).open().unwrap();
    drop(r.read().unwrap());
    drop(r.read_copied().unwrap());
    // Parks on the publish futex (waiters word) and times out.
    assert!(matches!(
        r.read_next(Some(Duration::from_millis(30))),
        Err(Error::Timeout { .. })
    ));
    let after = std::fs::read(path(&name)).unwrap();

    let shared = r.attachment().shared();
    let base = shared.mapping().as_ptr() as usize;
    let entry = r.attachment().entry() as *const _ as usize - base;
    let own_entry = entry..entry + layout::READER_ENTRY_SIZE;
    let waiter_words = [
        h("waiters")..h("waiters") + 4,
        h("release_notify")..h("release_notify") + 4,
    ];
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(
        changed.iter().any(|i| own_entry.contains(i)),
        "the reader did not register in its entry"
    );
    for i in changed {
        assert!(
            own_entry.contains(&i) || waiter_words.iter().any(|r| r.contains(&i)),
            "the reader changed byte {i}, outside its entry {own_entry:?} and the waiter words"
        );
    }
}

#[test]
fn a_segment_of_another_format_version_or_abi_is_refused_with_version_mismatch() {
    let name = unique("version");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::builder(&name)
        .size(1 << 20)
        .create()
        .unwrap();
    w.write(&small_batch(1)).unwrap();

    let future = layout::FORMAT_VERSION + 1;
    patch(&name, h("format_version") as u64, &future.to_le_bytes());
    match SnapshotReader::open(&name) {
        Err(Error::VersionMismatch {
            found, expected, ..
        }) => assert_eq!((found, expected), (future, layout::FORMAT_VERSION)),
        other => panic!("expected VersionMismatch, got {:?}", other.err()),
    }
    assert_eq!(
        classify(&name).unwrap(),
        SegmentStatus::Incompatible {
            found: future,
            found_abi: layout::ABI_FINGERPRINT
        }
    );
    // A new writer neither takes it over nor removes it.
    assert!(matches!(
        SnapshotWriter::create(&name, 1 << 20),
        Err(Error::VersionMismatch { found, .. }) if found == future
    ));
    assert!(
        std::fs::metadata(path(&name)).is_ok(),
        "an incompatible segment was removed"
    );

    // Version 1 (whose reserved bytes version 2 gave a meaning) is still read, but never taken over by a writer.
    patch(&name, h("format_version") as u64, &1u32.to_le_bytes());
    assert_eq!(
        SnapshotReader::open(&name)
            .unwrap()
            .read()
            .unwrap()
            .num_rows(),
        64
    );
    assert!(matches!(
        SnapshotWriter::create(&name, 1 << 20),
        Err(Error::VersionMismatch { found: 1, .. })
    ));

    patch(
        &name,
        h("format_version") as u64,
        &layout::FORMAT_VERSION.to_le_bytes(),
    );
    let big_endian_abi = u32::from_le_bytes([2, 8, 4, 64]);
    patch(&name, h("abi") as u64, &big_endian_abi.to_le_bytes());
    match SnapshotReader::open(&name) {
        Err(Error::VersionMismatch {
            found,
            found_abi,
            expected_abi,
            ..
        }) => {
            assert_eq!(found, layout::FORMAT_VERSION);
            assert_eq!(found_abi, big_endian_abi);
            assert_eq!(expected_abi, layout::ABI_FINGERPRINT);
        }
        other => panic!("expected VersionMismatch on the ABI, got {:?}", other.err()),
    }
    patch(
        &name,
        h("abi") as u64,
        &layout::ABI_FINGERPRINT.to_le_bytes(),
    );
    assert_eq!(
        SnapshotReader::open(&name)
            .unwrap()
            .read()
            .unwrap()
            .num_rows(),
        64
    );
}

/// A file that looks like a creator died while initialising: right size, state 0, the creator's identity and
/// (when `with_magic`) the first identity fields written.
fn half_built(name: &str, creator: ProcessIdentity, with_magic: bool) {
    let geo = Geometry::new(Mode::Snapshot, 1 << 20, 3, 64, 64 << 10).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path(name))
        .unwrap();
    f.set_len(geo.total_size as u64).unwrap();
    f.write_all_at(&creator.pid.to_le_bytes(), h("creator_pid") as u64)
        .unwrap();
    f.write_all_at(
        &creator.start_time.to_le_bytes(),
        h("creator_start_time") as u64,
    )
    .unwrap();
    if with_magic {
        f.write_all_at(&layout::MAGIC, h("magic") as u64).unwrap();
        f.write_all_at(
            &layout::FORMAT_VERSION.to_le_bytes(),
            h("format_version") as u64,
        )
        .unwrap();
    }
}

#[test]
fn a_half_initialised_version_1_segment_of_a_dead_creator_is_reclaimed_and_a_zero_header_never_is()
{
    // Version 1 creators published the name before building the segment: with our magic and a dead creator it is a
    // leftover of ours (readers: not initialised; the next writer removes and recreates it).
    let name = unique("half-dead");
    let _u = Unlink(name.clone());
    let creator = ProcessIdentity {
        pid: dead_pid(),
        start_time: 1,
    };
    half_built(&name, creator, true);
    match SnapshotReader::builder(&name)
        .open_timeout(Duration::from_secs(2))
        .open()
    {
        Err(Error::NotInitialised { creator_pid, .. }) => assert_eq!(creator_pid, creator.pid),
        other => panic!("expected NotInitialised, got {:?}", other.err()),
    }
    let status = classify(&name).unwrap();
    assert_eq!(
        status,
        SegmentStatus::Stale {
            creator_pid: creator.pid
        }
    );
    assert!(status.is_reclaimable());
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&small_batch(7)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(r.read().unwrap().num_rows(), 64);
    assert_eq!(
        classify(&name).unwrap(),
        SegmentStatus::Live {
            pid: std::process::id()
        }
    );

    // Without our magic the same bytes are someone else's file (segments are published only once built): never
    // waited for as ours, never removed, never taken.
    let other = unique("half-zero");
    let _u2 = Unlink(other.clone());
    half_built(&other, creator, false);
    let before = std::fs::read(path(&other)).unwrap();
    assert!(matches!(
        classify(&other).unwrap(),
        SegmentStatus::Foreign { .. }
    ));
    assert!(matches!(
        SnapshotReader::builder(&other)
            .open_timeout(Duration::from_secs(2))
            .open(),
        Err(Error::Foreign { .. })
    ));
    assert!(matches!(
        SnapshotWriter::create(&other, 1 << 20),
        Err(Error::Foreign { .. })
    ));
    assert!(matches!(
        qadataswap_arrow::status::remove(&other, true),
        Err(Error::NotOurs { .. })
    ));
    assert_eq!(
        std::fs::read(path(&other)).unwrap(),
        before,
        "a foreign file was changed"
    );
}

#[test]
fn a_half_initialised_segment_of_a_live_creator_is_waited_for_and_never_reclaimed() {
    let name = unique("half-live");
    let _u = Unlink(name.clone());
    let me = ProcessIdentity::current();
    half_built(&name, me, true);
    match SnapshotReader::builder(&name)
        .open_timeout(Duration::from_millis(100))
        .open()
    {
        Err(Error::NotInitialised { creator_pid, .. }) => assert_eq!(creator_pid, me.pid),
        other => panic!("expected NotInitialised, got {:?}", other.err()),
    }
    assert_eq!(
        classify(&name).unwrap(),
        SegmentStatus::Initialising {
            creator_pid: me.pid
        }
    );
    match SnapshotWriter::create(&name, 1 << 20) {
        Err(Error::WriterAlive { pid, .. }) => assert_eq!(pid, me.pid),
        other => panic!("expected WriterAlive, got {:?}", other.err()),
    }
    assert!(std::fs::metadata(path(&name)).is_ok());
}

#[test]
fn live_dead_closed_and_foreign_segments_are_told_apart_and_foreign_ones_are_never_touched() {
    // Live.
    let live = unique("live");
    let _u1 = Unlink(live.clone());
    let w = SnapshotWriter::create(&live, 1 << 20).unwrap();
    let status = classify(&live).unwrap();
    assert_eq!(
        status,
        SegmentStatus::Live {
            pid: std::process::id()
        }
    );
    assert!(!status.is_reclaimable());
    match SnapshotWriter::create(&live, 1 << 20) {
        Err(Error::WriterAlive { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected WriterAlive, got {:?}", other.err()),
    }

    // Writer dead: the header names a writer that is gone; a new writer takes over.
    let dead = dead_pid();
    let gone = ProcessIdentity {
        pid: dead,
        start_time: 1,
    };
    let role = qadataswap_sync::owner::Holder::of(gone, qadataswap_sync::process::pid_namespace())
        .unwrap();
    patch(&live, h("writer_claim") as u64, &role.pack().to_le_bytes());
    patch(&live, h("writer_pid") as u64, &dead.to_le_bytes());
    patch(&live, h("writer_start_time") as u64, &1u64.to_le_bytes());
    let status = classify(&live).unwrap();
    assert_eq!(status, SegmentStatus::WriterDead { pid: dead });
    assert!(status.is_reclaimable());
    // The old handle must not close (and unlink) the segment the new writer now owns.
    std::mem::forget(w);
    let w2 = SnapshotWriter::create(&live, 1 << 20).unwrap();
    assert_eq!(w2.generation(), 2);
    drop(w2);

    // Closed (persistent).
    let closed = unique("closed");
    let _u2 = Unlink(closed.clone());
    let w = SnapshotWriter::builder(&closed)
        .size(1 << 20)
        .persistent(true)
        .create()
        .unwrap();
    w.close().unwrap();
    let status = classify(&closed).unwrap();
    assert_eq!(status, SegmentStatus::Closed);
    assert!(status.is_reclaimable());

    // Foreign: wrong magic (state word 0, so it could pass for half-built if only the state were looked at),
    // and a file too short for a header.
    for (tag, content) in [
        ("magic", {
            let mut v = vec![0u8; 3 * 4096];
            v[..8].copy_from_slice(b"NOTOURS!");
            v
        }),
        ("short", b"hello".to_vec()),
    ] {
        let name = unique(tag);
        let _u = Unlink(name.clone());
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path(&name))
            .unwrap();
        std::fs::write(path(&name), &content).unwrap();
        assert!(
            matches!(classify(&name).unwrap(), SegmentStatus::Foreign { .. }),
            "{tag}"
        );
        assert!(SnapshotReader::builder(&name)
            .open_timeout(Duration::from_millis(300))
            .open()
            .is_err());
        assert!(
            SnapshotWriter::create(&name, 1 << 20).is_err(),
            "{tag}: a writer took it"
        );
        assert_eq!(
            std::fs::read(path(&name)).unwrap(),
            content,
            "{tag}: a foreign segment was changed or removed"
        );
    }

    // Foreign: another user's segment (only testable as root).
    if rustix::process::geteuid().is_root() {
        let name = unique("owner");
        let _u = Unlink(name.clone());
        let w = SnapshotWriter::builder(&name)
            .size(1 << 20)
            .persistent(true)
            .create()
            .unwrap();
        w.close().unwrap();
        std::os::unix::fs::chown(path(&name), Some(65534), Some(65534)).unwrap();
        assert!(matches!(
            classify(&name).unwrap(),
            SegmentStatus::Foreign { .. }
        ));
        assert!(SnapshotWriter::create(&name, 1 << 20).is_err());
        assert!(SnapshotReader::open(&name).is_err());
        assert!(
            std::fs::metadata(path(&name)).is_ok(),
            "another user's segment was removed"
        );
    }
}

/// A frame whose columns are all derived from `seq`.
fn consistent_batch(seq: i64, rows: usize) -> RecordBatch {
    let x: ArrayRef = Arc::new(Int64Array::from(vec![seq; rows]));
    let y: ArrayRef = Arc::new(Float64Array::from(vec![seq as f64 * 0.5; rows]));
    let s: ArrayRef =
        Arc::new(StringViewArray::from_iter_values((0..rows).map(|i| {
            format!("value {seq} row {i} and some padding past twelve bytes")
        })));
    RecordBatch::try_from_iter([("x", x), ("y", y), ("s", s)]).unwrap()
}

/// The regions of a segment the flipper attacks, in turn. The writer rewrites the first four with every frame, so
/// the segment recovers from their flips; flips of the reader table (lease counts) and of the header (geometry,
/// state, the writer's claim) can stop the writer for good, so they come last.
const FLIP_REGIONS: [&str; 6] = [
    "schema area",
    "slot descriptors",
    "frame metadata",
    "bodies",
    "reader table",
    "header",
];

/// How many regions, from the first, the segment recovers from.
const RECOVERABLE_REGIONS: usize = 4;

/// The byte ranges of region `region` (an index into [`FLIP_REGIONS`]) of the mapped segment `bytes` (a private
/// copy), whose layout is `head`. Frame metadata and bodies are found by walking each slot's Arrow IPC messages
/// (prefix and flatbuffer: metadata; body: bodies); the writer rewrites every slot with frames of the same shape.
fn flip_ranges(
    region: usize,
    bytes: &[u8],
    head: &qadataswap_arrow::segment::HeaderCopy,
) -> Vec<(usize, usize)> {
    let geo = head
        .validate("")
        .expect("the segment's own header is valid");
    let slots = geo.slot_count;
    let slot_cap = geo.slot_capacity;
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    match FLIP_REGIONS[region] {
        "header" => vec![(0, layout::HEADER_SIZE)],
        "reader table" => {
            let rt = geo.reader_table_offset;
            let n = geo.reader_capacity;
            vec![(rt, rt + n * layout::READER_ENTRY_SIZE)]
        }
        "slot descriptors" => {
            let st = geo.slot_table_offset;
            vec![(st, st + slots * layout::SLOT_DESC_SIZE)]
        }
        "schema area" => {
            let so = geo.schema_offset;
            vec![(so, so + geo.schema_capacity)]
        }
        _ => {
            let mut out = Vec::new();
            for s in 0..slots {
                let start = geo.data_offset + s * slot_cap;
                let mut pos = start;
                while pos + 8 <= start + slot_cap && le32(pos) == 0xFFFF_FFFF {
                    let meta = le32(pos + 4);
                    if meta == 0 || pos + 8 + meta > start + slot_cap {
                        break;
                    }
                    let fb = arrow_ipc::root_as_message(&bytes[pos + 8..pos + 8 + meta]);
                    let body = fb.map_or(0, |m| m.bodyLength().max(0) as usize);
                    if FLIP_REGIONS[region] == "frame metadata" {
                        out.push((pos, pos + 8 + meta));
                    } else if body > 0 {
                        out.push((pos + 8 + meta, pos + 8 + meta + body));
                    }
                    pos += 8 + meta + body;
                }
            }
            out
        }
    }
}

/// Child role: for the given time, write random bytes at random places of one region of the segment
/// (`QADS_HOSTILE_REGION`, an index into [`FLIP_REGIONS`]).
fn flipper(name: &str) {
    use qadataswap_shm::{Access, OpenOptions, Protection, Segment, SegmentName};
    let seg = Segment::open(
        &SegmentName::new(name).unwrap(),
        Access::ReadWrite,
        &OpenOptions::default(),
    )
    .unwrap();
    let len = seg.len();
    let map = seg.map(0, len, Protection::ReadWrite, false).unwrap();
    let head = qadataswap_arrow::segment::HeaderCopy::read(&map);
    let region: usize = std::env::var("QADS_HOSTILE_REGION")
        .unwrap()
        .parse()
        .unwrap();
    let mut copy = vec![0u8; len];
    // SAFETY: the mapping is `len` bytes long and stays mapped; the bytes are plain data that the writer may change
    // meanwhile (a torn copy only moves where the flips land).
    unsafe { std::ptr::copy_nonoverlapping(map.as_ptr(), copy.as_mut_ptr(), len) };
    let ranges: Vec<(usize, usize)> = flip_ranges(region, &copy, &head)
        .into_iter()
        .map(|(a, b)| (a.min(len), b.min(len)))
        .filter(|(a, b)| a < b)
        .collect();
    assert!(
        !ranges.is_empty(),
        "region {} is empty",
        FLIP_REGIONS[region]
    );
    let total: usize = ranges.iter().map(|(a, b)| b - a).sum();
    let secs: f64 = std::env::var("QADS_HOSTILE_SECS").unwrap().parse().unwrap();
    let mut rng = Lcg::new(std::process::id() as u64);
    let t0 = Instant::now();
    let mut flips = 0u64;
    println!("FLIPPING");
    while t0.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..1 + rng.next_u64() % 8 {
            let mut k = (rng.next_u64() as usize) % total;
            let at = ranges
                .iter()
                .find_map(|&(a, b)| {
                    if k < b - a {
                        Some(a + k)
                    } else {
                        k -= b - a;
                        None
                    }
                })
                .unwrap();
            // SAFETY: `at` is inside this process's read-write mapping of `len` bytes; the byte is plain data that
            // other processes read as bytes (that is what this hostile role is here to test).
            unsafe {
                map.as_mut_ptr()
                    .add(at)
                    .write_volatile(rng.next_u64() as u8)
            };
            flips += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("FLIPPED {flips}");
}

#[test]
fn child_roles() {
    let (Ok(role), Ok(name)) = (std::env::var(ROLE), std::env::var(NAME)) else {
        return;
    };
    match role.as_str() {
        "flipper" => flipper(&name),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// What the reader of the flip test got back, per region flipped.
#[derive(Default, Debug)]
struct FlipCounts {
    /// Frames equal to a frame the writer wrote (`consistent_batch(seq, 2000)` for the seq they carry).
    consistent: u64,
    /// Valid frames with other values.
    inconsistent: u64,
    /// Reads and copies that failed with an error.
    errors: u64,
}

/// Whether `batches` are exactly one frame the writer of the flip test wrote.
fn is_written_frame(batches: &[RecordBatch]) -> bool {
    let [b] = batches else {
        return false;
    };
    let Some(x) = b.column(0).as_any().downcast_ref::<Int64Array>() else {
        return false;
    };
    if x.is_empty() || x.is_null(0) {
        return false;
    }
    *b == consistent_batch(x.value(0), 2000)
}

#[test]
fn a_process_flipping_bytes_of_every_region_of_a_live_segment_yields_only_errors_or_written_frames()
{
    let name = unique("flip");
    let _u = Unlink(name.clone());
    // Per region; 6 regions.
    let secs = if std::env::var_os("QADATASWAP_SOAK").is_some() {
        5.0
    } else {
        0.6
    };
    let mut w = SnapshotWriter::builder(&name)
        .size(4 << 20)
        .slots(3)
        .lease_timeout(Duration::from_millis(200))
        .create()
        .unwrap();
    w.write(&consistent_batch(1, 2000)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut ok, mut err) = (0u64, 0u64);
            let mut seq = 2;
            while !stop.load(Ordering::Relaxed) {
                match w.write(&consistent_batch(seq, 2000)) {
                    Ok(_) => ok += 1,
                    Err(_) => err += 1,
                }
                seq += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (ok, err)
        })
    };

    let full = SnapshotReader::builder(&name)
        .timeout(Some(Duration::from_millis(50)))
        .validation(Validation::Full)
        .open()
        .unwrap();
    let caught_before = qadataswap_arrow::decode::caught_panics();
    let mut counts: Vec<FlipCounts> = FLIP_REGIONS.iter().map(|_| FlipCounts::default()).collect();
    for (region, c) in counts.iter_mut().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_roles", "--nocapture", "--test-threads=1"])
            .env(ROLE, "flipper")
            .env(NAME, &name)
            .env("QADS_HOSTILE_SECS", secs.to_string())
            .env("QADS_HOSTILE_REGION", region.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let child_pid = child.id();
        let watchdog_done = Arc::new(AtomicBool::new(false));
        {
            let done = Arc::clone(&watchdog_done);
            std::thread::spawn(move || {
                let t0 = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    if t0.elapsed() > Duration::from_secs_f64(secs + 60.0) {
                        let _ = Command::new("kill")
                            .args(["-9", &child_pid.to_string()])
                            .status();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        let mut count = |batches: Option<&[RecordBatch]>| match batches {
            Some(b) if is_written_frame(b) => c.consistent += 1,
            Some(_) => c.inconsistent += 1,
            None => c.errors += 1,
        };
        while child.try_wait().unwrap().is_none() {
            // Zero-copy with full validation: the bytes may change after the check (the flipper is hostile), so
            // the frame is compared only after it is copied out here, where the copy is validated again.
            match full.read().and_then(|f| f.to_owned()) {
                Ok(f) => count(Some(f.batches())),
                Err(_) => count(None),
            }
            // Copied: validated in private memory, so whatever comes back is a valid batch.
            match full.read_copied() {
                Ok(f) => {
                    for b in f.batches() {
                        for col in b.columns() {
                            col.to_data()
                                .validate_full()
                                .expect("read_copied returned an invalid array");
                            assert_eq!(col.len(), b.num_rows());
                        }
                    }
                    count(Some(f.batches()));
                }
                Err(_) => count(None),
            }
        }
        watchdog_done.store(true, Ordering::Relaxed);
        assert!(
            child.wait().unwrap().success(),
            "the flipper of the {} failed",
            FLIP_REGIONS[region]
        );
        // The next region starts from frames the writer wrote whole again.
        if region + 1 >= RECOVERABLE_REGIONS {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !full
            .read()
            .is_ok_and(|f| f.to_owned().is_ok_and(|f| is_written_frame(f.batches())))
        {
            assert!(
                Instant::now() < deadline,
                "the writer never wrote a whole frame again after the {} was flipped",
                FLIP_REGIONS[region]
            );
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (written, write_errors) = writer.join().expect("the writer thread panicked");
    for (region, c) in FLIP_REGIONS.iter().zip(&counts) {
        eprintln!(
            "flip test, {region}: {} written frames, {} other valid frames, {} errors",
            c.consistent, c.inconsistent, c.errors
        );
    }
    eprintln!("flip test: writer {written} ok / {write_errors} errors");
    assert_eq!(
        qadataswap_arrow::decode::caught_panics(),
        caught_before,
        "decode needed its last-resort catch_unwind"
    );
    let total = |f: fn(&FlipCounts) -> u64| counts.iter().map(f).sum::<u64>();
    assert!(
        total(|c| c.consistent) > 0,
        "no frame the writer wrote came back"
    );
    assert!(total(|c| c.errors) > 0, "no flip was ever detected");
    // The header, descriptors and schema area are checked (copied once, validated, commit word and frame_seq
    // compared): a frame that comes back is one the writer wrote. Flips of the reader table (a lease count or
    // cursor zeroed lets the writer reuse a slot under the reader), of the frame metadata (a buffer offset moved
    // onto other valid bytes) and of the bodies (a value changed) can give a valid frame with other values: format
    // v2 has no body checksum, and VALIDATION.md promises layout validity there, not the values. Those counts are
    // printed above.
    for region in ["header", "slot descriptors", "schema area"] {
        let c = &counts[FLIP_REGIONS.iter().position(|r| *r == region).unwrap()];
        assert_eq!(
            c.inconsistent, 0,
            "flips of the {region} gave {} valid frames the writer never wrote",
            c.inconsistent
        );
    }
}

#[test]
fn unknown_states_and_flag_bits_are_refused_with_a_clear_error() {
    let name = unique("unknown-bits");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::builder(&name)
        .size(1 << 20)
        .create()
        .unwrap();
    w.write(&small_batch(1)).unwrap();
    let corrupt = |what: &str| match SnapshotReader::open(&name) {
        Err(Error::CorruptHeader { what: w, .. }) => assert!(w.contains(what), "{w}"),
        other => panic!("expected CorruptHeader about {what}, got {:?}", other.err()),
    };
    // A state no writer stores, at attach and for a reader already attached.
    let attached = SnapshotReader::open(&name).unwrap();
    assert_eq!(attached.read().unwrap().seq(), 1);
    patch(&name, h("state") as u64, &4u32.to_le_bytes());
    corrupt("unknown state 4");
    match attached.read_next(Some(Duration::from_millis(100))) {
        Err(Error::CorruptHeader { what, .. }) => {
            assert!(what.contains("unknown state 4"), "{what}")
        }
        other => panic!("expected CorruptHeader, got {other:?}"),
    }
    patch(
        &name,
        h("state") as u64,
        &layout::state::READY.to_le_bytes(),
    );
    // A stray header flag bit, and both codecs at once.
    patch(&name, h("flags") as u64, &0x20u32.to_le_bytes());
    corrupt("unknown header flag bits 0x20");
    patch(
        &name,
        h("flags") as u64,
        &(layout::flags::LZ4 | layout::flags::ZSTD).to_le_bytes(),
    );
    corrupt("both LZ4 and ZSTD");
    patch(&name, h("flags") as u64, &0u32.to_le_bytes());
    // A stray slot-descriptor flag bit: that frame is refused, never decoded by guess.
    let r = SnapshotReader::open(&name).unwrap();
    let geo = *r.attachment().shared().geometry();
    patch(
        &name,
        (geo.desc_offset(0) + format::slot_desc_field("flags").unwrap().offset) as u64,
        &0x8u32.to_le_bytes(),
    );
    match r.read() {
        Err(Error::CorruptFrame { what, .. }) => {
            assert!(what.contains("unknown slot flag bits 0x8"), "{what}")
        }
        other => panic!("expected CorruptFrame, got {other:?}"),
    }
    drop(w);
}

#[test]
fn a_flipped_byte_in_the_schema_area_is_an_error_never_another_schema() {
    let name = unique("schema-flip");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::builder(&name)
        .size(1 << 20)
        .create()
        .unwrap();
    w.write(&small_batch(1)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let schema = r.schema().unwrap().unwrap();
    assert_eq!(schema.fields().len(), small_batch(1).num_columns());
    let geo = *r.attachment().shared().geometry();
    let len = std::fs::read(path(&name)).unwrap()[h("schema_len")..h("schema_len") + 8]
        .try_into()
        .map(u64::from_le_bytes)
        .unwrap() as usize;
    // Flip each byte of the schema message in turn: never a different schema without an error.
    for at in 0..len {
        let offset = (geo.schema_offset + at) as u64;
        let old = std::fs::read(path(&name)).unwrap()[geo.schema_offset + at];
        patch(&name, offset, &[old ^ 0x01]);
        match r.schema() {
            Err(Error::CorruptHeader { .. }) => {}
            Ok(Some(s)) => panic!("byte {at} flipped, yet a schema came back: {s:?}"),
            other => panic!("byte {at}: {other:?}"),
        }
        patch(&name, offset, &[old]);
    }
    assert_eq!(r.schema().unwrap().unwrap(), schema);
    drop(w);
}

#[test]
fn a_view_or_offset_buffer_moved_onto_another_buffers_bytes_is_refused_at_every_level() {
    // A metadata-only corruption: the views buffer of a Utf8View column (and, separately, the offsets of a Utf8
    // column) moved onto the bytes of another column. Trusted reads do not look into bodies, so without a layout
    // check Arrow, Polars or Arrow C++ would read those bytes as views or offsets.
    const ROWS: usize = 1231; // 16 * ROWS and 8 * ROWS are byte counts found nowhere else in the frame
    for (tag, column, entry_len) in [
        (
            "view",
            Arc::new(StringViewArray::from_iter_values(
                (0..ROWS).map(|i| format!("a string longer than twelve bytes {i}")),
            )) as ArrayRef,
            16 * ROWS,
        ),
        (
            "utf8",
            Arc::new(arrow_array::LargeStringArray::from_iter_values(
                (0..ROWS).map(|i| format!("s{i}")),
            )) as ArrayRef,
            8 * (ROWS + 1),
        ),
    ] {
        let name = unique(&format!("moved-{tag}"));
        let _u = Unlink(name.clone());
        let big: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX - 7; ROWS + 3]));
        let batch = RecordBatch::try_from_iter([
            (
                "big",
                Arc::new(Int64Array::from(vec![i64::MAX - 7; ROWS])) as ArrayRef,
            ),
            ("s", column),
        ])
        .unwrap();
        drop(big);
        let mut w = SnapshotWriter::builder(&name)
            .size(4 << 20)
            .create()
            .unwrap();
        w.write(&batch).unwrap();
        let bytes = std::fs::read(path(&name)).unwrap();
        // The flatbuffer Buffer entries (offset: i64, length: i64): `big`'s values, and the column's buffer.
        let entries: Vec<(usize, i64)> = (0..bytes.len().saturating_sub(16))
            .step_by(8)
            .filter_map(|at| {
                let offset = i64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
                let len = i64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
                // Buffer offsets are multiples of 64: that rules out pairs straddling two entries.
                ((len == (8 * ROWS) as i64 || len == entry_len as i64)
                    && (0..1 << 20).contains(&offset)
                    && offset % 64 == 0)
                    .then_some((at, offset))
            })
            .collect();
        let big_offset = entries
            .iter()
            .find(|(at, _)| {
                i64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) == (8 * ROWS) as i64
            })
            .map(|e| e.1)
            .expect("big's buffer entry");
        // The last match: earlier ones may straddle two entries (a length 0, then an offset).
        let (target_at, _) = *entries
            .iter()
            .rfind(|(at, _)| {
                i64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) == entry_len as i64
            })
            .expect("the column's buffer entry");
        patch(&name, target_at as u64, &big_offset.to_le_bytes());
        for validation in [Validation::Trusted, Validation::Full] {
            let r = SnapshotReader::builder(&name)
                .validation(validation)
                .open()
                .unwrap();
            match r.read() {
                Err(Error::CorruptFrame { what, .. }) => {
                    assert!(
                        what.contains("moved onto another buffer")
                            || validation == Validation::Full,
                        "{tag}: {what}"
                    )
                }
                Ok(f) => panic!(
                    "{tag} at {validation:?}: a frame with a moved buffer was accepted: {f:?}"
                ),
                Err(e) => panic!("{tag} at {validation:?}: {e}"),
            }
        }
        drop(w);
    }
}

/// The offset of header field `name` (FORMAT.md §3).
fn h(name: &str) -> usize {
    format::header_field(name)
        .expect("a FORMAT.md header field")
        .offset
}
