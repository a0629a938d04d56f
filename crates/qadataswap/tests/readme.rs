//! The README's Rust code, exactly as printed: the seed's lines compile (they are `examples/readme_seed.rs`
//! verbatim), and the two quick-start programs (`examples/readme_writer.rs`, `examples/readme_reader.rs`, the
//! README's blocks verbatim) run as two processes in both orders.
#![cfg(feature = "polars")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The code block after `<!-- readme-test: rust {tag} -->` in README.md.
fn block(tag: &str) -> String {
    lang_block("rust", tag)
}

/// The code block after `<!-- readme-test: {lang} {tag} -->` in README.md.
fn lang_block(lang: &str, tag: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let marker = format!("<!-- readme-test: {lang} {tag} -->\n```{lang}\n");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no `{marker}`"))
        + marker.len();
    let end = readme[start..].find("```").unwrap() + start;
    readme[start..end].to_owned()
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.rs")),
    )
    .unwrap()
}

#[test]
fn the_readme_rust_blocks_are_the_examples_that_compile_and_run() {
    assert_eq!(block("writer"), example("readme_writer"));
    assert_eq!(block("reader"), example("readme_reader"));
    // The seed's lines, as printed, are the body of examples/readme_seed.rs (indented by one level there).
    let seed = example("readme_seed");
    let begin = seed.find("    // README begin\n").unwrap() + "    // README begin\n".len();
    let end = seed.find("    // README end\n").unwrap();
    let body: String = seed[begin..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(block("seed"), body);
}

/// The lines between `// README cpp {tag} begin` and `... end` in the C++ test, without their indentation.
fn cpp_region(tag: &str) -> String {
    let text =
        std::fs::read_to_string(root().join("bindings/c/tests/shared_dataframe_test.cc")).unwrap();
    let begin_marker = format!("// README cpp {tag} begin\n");
    let begin = text.find(&begin_marker).unwrap() + begin_marker.len();
    let end = text[begin..]
        .find(&format!("// README cpp {tag} end"))
        .unwrap()
        + begin;
    text[begin..end]
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_readme_cpp_lines_are_the_ones_the_cpp_test_compiles_and_runs() {
    assert_eq!(lang_block("cpp", "writer"), cpp_region("writer"));
    assert_eq!(lang_block("cpp", "reader"), cpp_region("reader"));
}

/// target/<profile>/examples/<name>, built by `cargo test` beside this test binary.
fn built_example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

fn start(name: &str) -> Child {
    Command::new(built_example(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} not built ({e}): `cargo test` builds the examples"))
}

fn clean() {
    for n in ["mydata-rs", "bigdata-rs"] {
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
    }
}

/// Wait for an observable condition, with a watchdog; fails if `child` exits first.
fn until(what: &str, child: &mut Child, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what}: the process exited first"
        );
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::yield_now();
    }
}

fn holds_inotify(pid: u32) -> bool {
    let dir = format!("/proc/{pid}/fdinfo");
    std::fs::read_dir(&dir).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_to_string(fd.path()).is_ok_and(|t| t.contains("inotify wd:")))
    })
}

fn output(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readme_quick_start_runs_as_two_processes_in_either_order() {
    for reader_first in [false, true] {
        clean();
        let (writer, reader) = if reader_first {
            let mut reader = start("readme_reader");
            let pid = reader.id();
            until("the reader waits for mydata-rs", &mut reader, || {
                holds_inotify(pid)
            });
            (start("readme_writer"), reader)
        } else {
            let mut writer = start("readme_writer");
            until("the writer creates mydata-rs", &mut writer, || {
                Path::new("/dev/shm/mydata-rs").exists()
            });
            (writer, start("readme_reader"))
        };
        assert_eq!(
            output(reader),
            "(3, 2)\n10000\n",
            "reader first: {reader_first}"
        );
        output(writer);
        assert!(
            !Path::new("/dev/shm/mydata-rs").exists() && !Path::new("/dev/shm/bigdata-rs").exists()
        );
    }
    clean();
}
