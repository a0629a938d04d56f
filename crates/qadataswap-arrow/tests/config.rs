//! `qadataswap.yaml` on the snapshot path: a writer (and a reader's open timeout) takes what it is not given from
//! the configuration found the documented way: an explicit file, else `$QADATASWAP_CONFIG`, else
//! `./qadataswap.yaml`; what the builder sets wins; a broken file is an error that names it.
//!
//! The working-directory and environment cases run in child processes (this binary re-executed), so that they
//! never change the environment of tests running in parallel.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use qadataswap_arrow::{Error, SnapshotReader, SnapshotWriter};

const ROLE: &str = "QADS_CONFIG_ROLE";

fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "qads-cfg-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

fn dir_with(tag: &str, yaml: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("qadataswap.yaml"), yaml).unwrap();
    d
}

const FIVE_SLOTS: &str = "memory:\n  size_mb: 5\n  num_buffers: 5\nsync:\n  timeout_ms: 1234\n";

#[test]
fn an_explicit_file_gives_the_writer_its_size_slots_and_lease_timeout() {
    let d = dir_with("explicit", FIVE_SLOTS);
    let name = unique("explicit");
    let w = SnapshotWriter::builder(&name)
        .config_file(d.join("qadataswap.yaml"))
        .create()
        .unwrap();
    let g = w.geometry();
    assert_eq!(g.slot_count, 5);
    assert_eq!(g.slot_capacity * 5, 5 << 20, "5 MiB split across 5 slots");
    let opts = SnapshotWriter::builder(&name)
        .config_file(d.join("qadataswap.yaml"))
        .resolve()
        .unwrap();
    assert_eq!(
        opts.lease_timeout,
        Duration::from_millis(1234),
        "sync.timeout_ms: one attempt"
    );
}

#[test]
fn what_the_builder_sets_wins_over_the_file() {
    let d = dir_with("wins", FIVE_SLOTS);
    let name = unique("wins");
    let w = SnapshotWriter::builder(&name)
        .config_file(d.join("qadataswap.yaml"))
        .slots(2)
        .size(1 << 20)
        .create()
        .unwrap();
    assert_eq!(w.geometry().slot_count, 2);
    assert_eq!(w.geometry().slot_capacity * 2, 1 << 20);
}

#[test]
fn a_broken_file_is_an_error_naming_the_file_and_the_key_and_nothing_is_created() {
    let d = dir_with("broken", "memory:\n  num_bufers: 4\n");
    let name = unique("broken");
    let e = SnapshotWriter::builder(&name)
        .config_file(d.join("qadataswap.yaml"))
        .create()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&d.join("qadataswap.yaml").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("memory.num_bufers"), "{msg}");
    assert!(!std::path::Path::new("/dev/shm").join(&name).exists());

    let missing = d.join("nope.yaml");
    let e = SnapshotWriter::builder(&name)
        .config_file(&missing)
        .create()
        .unwrap_err();
    assert!(e.to_string().contains("nope.yaml"), "{e}");
}

/// Child: create a writer with only a size (or open a reader on a missing name) in the working directory the
/// parent chose, and print what the configuration made of it.
fn child_role(role: &str) {
    let name = std::env::var("QADS_CONFIG_NAME").unwrap();
    match role {
        "write" => match SnapshotWriter::create(&name, 1 << 20) {
            Ok(w) => println!("SLOTS {}", w.geometry().slot_count),
            Err(e) => println!("ERROR {e}"),
        },
        "open" => {
            let t0 = std::time::Instant::now();
            let e = SnapshotReader::open(&name).unwrap_err();
            // The file says 200 ms: the reader gives up well before the built-in 5 s.
            println!(
                "OPEN {} {}",
                matches!(e, Error::NotCreated { .. }),
                t0.elapsed() < Duration::from_secs(4)
            );
        }
        _ => unreachable!(),
    }
}

fn run_child(test: &str, role: &str, cwd: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .current_dir(cwd)
        .env(ROLE, role)
        .env("QADS_CONFIG_NAME", unique(role))
        .env_remove("QADATASWAP_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // The test harness prints "test <name> ... " on the same line, before the answer.
        .find_map(|l| {
            ["SLOTS ", "ERROR ", "OPEN "]
                .iter()
                .find_map(|m| l.find(m).map(|at| l[at..].trim().to_owned()))
        })
        .unwrap_or_else(|| panic!("child printed no answer"))
}

#[test]
fn the_file_is_found_in_the_working_directory_then_by_the_environment_variable_first() {
    const TEST: &str =
        "the_file_is_found_in_the_working_directory_then_by_the_environment_variable_first";
    if let Ok(role) = std::env::var(ROLE) {
        return child_role(&role);
    }
    let cwd = dir_with("cwd", FIVE_SLOTS);
    assert_eq!(run_child(TEST, "write", &cwd, &[]), "SLOTS 5");
    let other = dir_with("env", "memory:\n  num_buffers: 7\n");
    let named = other.join("qadataswap.yaml");
    assert_eq!(
        run_child(
            TEST,
            "write",
            &cwd,
            &[("QADATASWAP_CONFIG", named.to_str().unwrap())]
        ),
        "SLOTS 7",
        "QADATASWAP_CONFIG wins over ./qadataswap.yaml"
    );
    assert_eq!(
        run_child(
            TEST,
            "write",
            &cwd,
            &[("QADATASWAP_MEMORY_NUM_BUFFERS", "4")]
        ),
        "SLOTS 4",
        "a variable wins over the file"
    );
    let broken = dir_with("stray", "sync: [1, 2]\n");
    let answer = run_child(TEST, "write", &broken, &[]);
    assert!(answer.starts_with("ERROR "), "{answer}");
    assert!(
        answer.contains("qadataswap.yaml") && answer.contains("sync"),
        "a stray file names itself: {answer}"
    );
    let quick = dir_with("open", "sync:\n  timeout_ms: 200\n");
    assert_eq!(run_child(TEST, "open", &quick, &[]), "OPEN true true");
}
