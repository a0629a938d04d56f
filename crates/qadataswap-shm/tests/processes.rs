//! Multi-process tests: every test that needs a second process re-executes this test binary with
//! `--exact <test> --nocapture` and [`ROLE`] set; the test function then plays the child role and returns.
//!
//! Children report on stdout as `RESULT ok <detail>` or `RESULT err <Debug>` plus `MESSAGE <Display>`.

use std::io::Read;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qadataswap_shm::{
    list, page_size, unlink, Access, CreateOptions, OpenOptions, Protection, Segment, SegmentName,
    ShmError, SHM_DIR,
};

/// Selects the child role; unset in the parent.
const ROLE: &str = "QADS_SHM_TEST_ROLE";
/// The segment the child works on.
const NAME: &str = "QADS_SHM_TEST_NAME";
/// A length for the child role (bytes).
const LEN: &str = "QADS_SHM_TEST_LEN";
/// Comma-separated relaxations for `open`: "shared", "foreign".
const ALLOW: &str = "QADS_SHM_TEST_ALLOW";
/// A child that takes longer than this is killed and the test fails (a hang, not a slow machine).
const WATCHDOG: Duration = Duration::from_secs(120);

/// Unlinks a name (segment or planted entry) when the test ends, even by panic.
struct Cleanup(SegmentName);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = unlink(&self.0);
    }
}

/// A unique name for this process and test, with a guard that removes it.
fn unique(test: &str) -> (SegmentName, Cleanup) {
    let name = SegmentName::new(format!("qads-test-{}-{test}", std::process::id())).unwrap();
    let _ = unlink(&name);
    (name.clone(), Cleanup(name))
}

fn path_of(name: &SegmentName) -> PathBuf {
    PathBuf::from(SHM_DIR).join(name.as_str())
}

/// The byte written at `i` by the writers in these tests.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn env_len() -> usize {
    std::env::var(LEN).unwrap().parse().unwrap()
}

/// Runs the child `role` for `name` in a fresh process of this test binary (only the test `test`), and returns its
/// stdout. Fails the test if the child fails or outlives the watchdog.
fn run_child(test: &str, role: &str, name: &SegmentName, extra_env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(NAME, name.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: child role {role} of {test} hung and was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(
        status.success(),
        "child role {role} failed ({status}):\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.contains("RESULT "),
        "child role {role} reported nothing:\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// The child side. Returns true if this process is a child (the test function must then return).
fn play_child_role() -> bool {
    let Ok(role) = std::env::var(ROLE) else {
        return false;
    };
    let name = SegmentName::new(std::env::var(NAME).unwrap()).unwrap();
    match role.as_str() {
        // Create the segment, fill it with the pattern and leave it for the parent.
        "create-and-write" => {
            let len = env_len();
            let seg = Segment::create(&name, len, &CreateOptions::default()).unwrap();
            let map = seg.map(0, len, Protection::ReadWrite, true).unwrap();
            for i in 0..len {
                // SAFETY: i < len, inside the mapping; nobody else touches the segment until this process exits.
                unsafe { map.as_mut_ptr().add(i).write(pattern(i)) };
            }
            println!("RESULT ok wrote {len}");
        }
        // Open read-only, check it is at least LEN bytes, map it and verify the pattern; report the outcome.
        "open-and-read" => {
            let allow = std::env::var(ALLOW).unwrap_or_default();
            let opts = OpenOptions::new()
                .allow_shared_mode(allow.contains("shared"))
                .allow_foreign_owner(allow.contains("foreign"));
            let len = env_len();
            let result = Segment::open(&name, Access::ReadOnly, &opts).and_then(|seg| {
                seg.require_len(len)?;
                seg.map(0, len, Protection::ReadOnly, true)
            });
            match result {
                Ok(map) => {
                    let bad = (0..len)
                        // SAFETY: i < len, inside the mapping; the writer finished before this child started.
                        .filter(|&i| unsafe { map.as_ptr().add(i).read() } != pattern(i))
                        .count();
                    println!("RESULT ok read {len} bytes, {bad} wrong");
                }
                Err(e) => {
                    println!("RESULT err {e:?}");
                    println!("MESSAGE {e}");
                }
            }
        }
        // Shrink the file behind everybody's back.
        "truncate" => {
            let seg = Segment::open(&name, Access::ReadWrite, &OpenOptions::default()).unwrap();
            rustix::fs::ftruncate(seg.as_fd(), env_len() as u64).unwrap();
            println!("RESULT ok truncated");
        }
        other => panic!("unknown child role {other}"),
    }
    true
}

/// Creates `name` in this process, `len` bytes of the pattern.
fn create_with_pattern(name: &SegmentName, len: usize) -> Segment {
    let seg = Segment::create(name, len, &CreateOptions::default()).unwrap();
    let map = seg.map(0, len, Protection::ReadWrite, true).unwrap();
    for i in 0..len {
        // SAFETY: i < len, inside the mapping; no other process has the name yet.
        unsafe { map.as_mut_ptr().add(i).write(pattern(i)) };
    }
    seg
}

#[test]
fn a_segment_created_here_is_read_by_another_process() {
    if play_child_role() {
        return;
    }
    let (name, _cleanup) = unique("here-to-child");
    let len = 3 * page_size() + 17;
    let _seg = create_with_pattern(&name, len);
    let out = run_child(
        "a_segment_created_here_is_read_by_another_process",
        "open-and-read",
        &name,
        &[(LEN, len.to_string())],
    );
    assert!(
        out.contains(&format!("RESULT ok read {len} bytes, 0 wrong")),
        "{out}"
    );
}

#[test]
fn a_segment_created_by_another_process_is_read_here() {
    if play_child_role() {
        return;
    }
    let (name, _cleanup) = unique("child-to-here");
    let len = 5 * page_size();
    let out = run_child(
        "a_segment_created_by_another_process_is_read_here",
        "create-and-write",
        &name,
        &[(LEN, len.to_string())],
    );
    assert!(out.contains("RESULT ok wrote"), "{out}");
    let seg = Segment::open(&name, Access::ReadOnly, &OpenOptions::default()).unwrap();
    assert_eq!(seg.len(), len);
    assert_eq!(seg.mode(), 0o600);
    let map = seg.map(0, len, Protection::ReadOnly, true).unwrap();
    for i in 0..len {
        // SAFETY: i < len, inside the mapping; the writer has exited.
        let byte = unsafe { map.as_ptr().add(i).read() };
        assert_eq!(byte, pattern(i), "byte {i}");
    }
}

#[test]
fn exclusive_create_refuses_a_name_another_process_created() {
    if play_child_role() {
        return;
    }
    let (name, _cleanup) = unique("exclusive");
    run_child(
        "exclusive_create_refuses_a_name_another_process_created",
        "create-and-write",
        &name,
        &[(LEN, "4096".into())],
    );
    let err = Segment::create(&name, 4096, &CreateOptions::default()).unwrap_err();
    match &err {
        ShmError::AlreadyExists { name: n } => assert_eq!(n, name.as_str()),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("'{name}' already exists")),
        "{err}"
    );
    // The refusal left the other process's data alone.
    let seg = Segment::open(&name, Access::ReadOnly, &OpenOptions::default()).unwrap();
    let map = seg.map(0, 4096, Protection::ReadOnly, true).unwrap();
    // SAFETY: inside the mapping; the writer has exited.
    assert_eq!(unsafe { map.as_ptr().add(4095).read() }, pattern(4095));
}

#[test]
fn a_segment_other_users_may_read_is_refused_as_insecure() {
    if play_child_role() {
        return;
    }
    const TEST: &str = "a_segment_other_users_may_read_is_refused_as_insecure";
    let (name, _cleanup) = unique("mode");
    let _seg = create_with_pattern(&name, 4096);
    std::fs::set_permissions(path_of(&name), std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = run_child(TEST, "open-and-read", &name, &[(LEN, "4096".into())]);
    assert!(out.contains("RESULT err InsecureMode"), "{out}");
    assert!(out.contains(&format!("mode: {}", 0o644)), "{out}");
    assert!(
        out.contains("has mode 0644") && out.contains("chmod 600"),
        "{out}"
    );

    let out = run_child(
        TEST,
        "open-and-read",
        &name,
        &[(LEN, "4096".into()), (ALLOW, "shared".into())],
    );
    assert!(
        out.contains("RESULT ok read 4096 bytes, 0 wrong"),
        "opting in works: {out}"
    );
}

#[test]
fn a_segment_owned_by_another_user_is_refused_as_foreign() {
    if play_child_role() {
        return;
    }
    const TEST: &str = "a_segment_owned_by_another_user_is_refused_as_foreign";
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 {
        eprintln!("skipped: chown to another user needs root (euid {euid})");
        return;
    }
    let (name, _cleanup) = unique("owner");
    let _seg = create_with_pattern(&name, 4096);
    chown(path_of(&name), Some(65534), Some(65534)).unwrap();

    let out = run_child(TEST, "open-and-read", &name, &[(LEN, "4096".into())]);
    assert!(out.contains("RESULT err ForeignOwner"), "{out}");
    assert!(out.contains("uid: 65534, expected: 0"), "{out}");
    assert!(out.contains("owned by uid 65534"), "{out}");

    let out = run_child(
        TEST,
        "open-and-read",
        &name,
        &[(LEN, "4096".into()), (ALLOW, "foreign".into())],
    );
    assert!(
        out.contains("RESULT ok read 4096 bytes, 0 wrong"),
        "opting in works: {out}"
    );
}

#[test]
fn a_symlink_in_dev_shm_is_refused_and_never_followed() {
    if play_child_role() {
        return;
    }
    const TEST: &str = "a_symlink_in_dev_shm_is_refused_and_never_followed";
    let (target, _ct) = unique("symlink-target");
    let (link, _cl) = unique("symlink");
    let _seg = create_with_pattern(&target, 4096);
    symlink(path_of(&target), path_of(&link)).unwrap();

    // Opening through the link is refused, even though the target is a perfectly good segment.
    let out = run_child(TEST, "open-and-read", &link, &[(LEN, "4096".into())]);
    assert!(out.contains("RESULT err NotARegularFile"), "{out}");
    assert!(out.contains("is not a regular file"), "{out}");

    // Creating over it is refused too.
    let err = Segment::create(&link, 4096, &CreateOptions::default()).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");

    // A dangling link must not make create produce a file at its target.
    let (dangling, _cd) = unique("dangling");
    let (nowhere, _cn) = unique("dangling-target");
    symlink(path_of(&nowhere), path_of(&dangling)).unwrap();
    let err = Segment::create(&dangling, 4096, &CreateOptions::default()).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");
    assert!(
        !path_of(&nowhere).exists(),
        "create followed the dangling symlink"
    );

    // `list` shows the links for what they are.
    let links: Vec<_> = list("qads-test-")
        .unwrap()
        .into_iter()
        .filter(|i| i.name == link.as_str())
        .collect();
    assert_eq!(links.len(), 1);
    assert!(!links[0].regular);
}

#[test]
fn a_truncated_segment_is_refused_as_too_small_instead_of_crashing() {
    if play_child_role() {
        return;
    }
    const TEST: &str = "a_truncated_segment_is_refused_as_too_small_instead_of_crashing";
    let (name, _cleanup) = unique("truncated");
    let len = 16 * page_size();
    let short = page_size();
    let seg = create_with_pattern(&name, len);

    run_child(TEST, "truncate", &name, &[(LEN, short.to_string())]);

    // The handle opened before the truncation notices (fresh fstat) ...
    assert_eq!(seg.len(), len, "cached until re-read");
    match seg.require_len(len) {
        Err(ShmError::TooSmall { actual, needed, .. }) => {
            assert_eq!((actual, needed), (short as u64, len as u64))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        seg.map(0, len, Protection::ReadOnly, true),
        Err(ShmError::TooSmall { .. })
    ));
    assert_eq!(seg.len(), short);
    // ... what is left can still be mapped and read ...
    let map = seg.map(0, short, Protection::ReadOnly, true).unwrap();
    // SAFETY: inside the mapping and the file; the truncating process has exited.
    let last = unsafe { map.as_ptr().add(short - 1).read() };
    assert_eq!(last, pattern(short - 1));

    // ... and so does a fresh reader in another process expecting the old size.
    let out = run_child(TEST, "open-and-read", &name, &[(LEN, len.to_string())]);
    assert!(out.contains("RESULT err TooSmall"), "{out}");
    assert!(
        out.contains(&format!("actual: {short}, needed: {len}")),
        "{out}"
    );
}

#[test]
fn a_segment_larger_than_dev_shm_is_too_large_and_leaves_no_name_behind() {
    if play_child_role() {
        return;
    }
    let (name, _cleanup) = unique("too-large");
    let vfs = rustix::fs::statvfs(SHM_DIR).unwrap();
    // Beyond the total size (not just what is free now), so the request fails whatever other tests allocate.
    let total = vfs.f_blocks * vfs.f_frsize;
    let available = vfs.f_bavail * vfs.f_frsize;
    let requested = total.max(available) + (1 << 30);
    let err = Segment::create(&name, requested as usize, &CreateOptions::default()).unwrap_err();
    match &err {
        ShmError::TooLarge {
            name: n,
            requested: r,
            available: a,
        } => {
            assert_eq!(n, name.as_str());
            assert_eq!(*r, requested);
            assert!(
                *a < requested,
                "reported available {a} >= requested {requested}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("--shm-size"), "{err}");
    assert!(
        std::fs::symlink_metadata(path_of(&name)).is_err(),
        "the half-made segment {name} was left in {SHM_DIR}"
    );
    assert!(matches!(
        Segment::open(&name, Access::ReadOnly, &OpenOptions::default()),
        Err(ShmError::NotFound { .. })
    ));
}
