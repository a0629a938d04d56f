//! Tidy checks of the repository's shape, run by `cargo test` (in the manner of rust-analyzer's `xtask tidy`):
//!
//! - crate dependencies only point down the layers: shm, sync -> arrow -> stream -> polars and flight -> the umbrella
//!   and the CLI -> the bindings -> xtask;
//! - every crate without `unsafe` code says so with `#![forbid(unsafe_code)]`, so that none creeps in unseen;
//! - the docs name no `cargo xtask` command and no `qadataswap` subcommand that does not exist.
//!
//! (File-level import cycles inside a crate are not checked yet: the architecture issue removes the ones there are.)

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Crate directory -> (package name, layer). A crate may depend only on crates of a lower layer.
const LAYERS: &[(&str, &str, u32)] = &[
    ("crates/qadataswap-shm", "qadataswap-shm", 0),
    ("crates/qadataswap-sync", "qadataswap-sync", 0),
    ("crates/qadataswap-arrow", "qadataswap-arrow", 1),
    ("crates/qadataswap-stream", "qadataswap-stream", 2),
    ("crates/qadataswap-polars", "qadataswap-polars", 3),
    ("crates/qadataswap-flight", "qadataswap-flight", 3),
    ("crates/qadataswap", "qadataswap", 4),
    ("crates/qadataswap-cli", "qadataswap-cli", 4),
    ("bindings/c", "qadataswap-c", 5),
    ("bindings/python", "qadataswap-python", 5),
    ("xtask", "xtask", 6),
];

fn layer_of(package: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(_, p, _)| *p == package)
        .map(|(_, _, l)| *l)
}

/// The workspace's own packages a manifest depends on (normal and build dependencies; dev-dependencies may reach
/// anywhere below xtask: tests drive the layers above too).
fn internal_deps(manifest: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let normal = section == "dependencies"
            || section == "build-dependencies"
            || (section.starts_with("target.")
                && section.ends_with(".dependencies")
                && !section.contains("dev-"));
        if !normal {
            continue;
        }
        if let Some((name, _)) = line.split_once('=') {
            // `qadataswap-shm.workspace = true` names the package before the dot.
            let name = name.trim().split('.').next().unwrap_or("");
            if name.starts_with("qadataswap") {
                deps.push(name.to_owned());
            }
        }
    }
    deps
}

#[test]
fn every_crate_is_in_the_layer_table() {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .unwrap()
        .0;
    for m in members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        assert!(
            LAYERS.iter().any(|(dir, _, _)| *dir == m),
            "workspace member {m} has no layer in xtask/tests/tidy.rs: add it where it belongs"
        );
    }
}

#[test]
fn crate_dependencies_only_point_down_the_layers() {
    let mut problems = Vec::new();
    for (dir, package, layer) in LAYERS {
        let manifest = fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        for dep in internal_deps(&manifest) {
            match layer_of(&dep) {
                Some(l) if l < *layer => {}
                Some(l) => problems.push(format!(
                    "{package} (layer {layer}) depends on {dep} (layer {l}): dependencies must point down"
                )),
                None => problems.push(format!("{package} depends on {dep}, which has no layer")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Whether a line of Rust uses `unsafe` as a keyword (not in a comment or a string, roughly: what precedes `//`
/// and sits outside double quotes).
fn uses_unsafe(line: &str) -> bool {
    let code = line.split_once("//").map_or(line, |(c, _)| c);
    let mut outside = String::new();
    for (i, part) in code.split('"').enumerate() {
        if i % 2 == 0 {
            outside.push_str(part);
            outside.push(' ');
        }
    }
    let words: Vec<&str> = outside
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '{'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| {
        w[0] == "unsafe"
            && (w[1].starts_with('{') || matches!(w[1], "fn" | "impl" | "extern" | "trait"))
    }) || outside.contains("unsafe {")
        || outside.trim_end().ends_with("unsafe")
}

#[test]
fn every_crate_without_unsafe_code_forbids_it() {
    let mut problems = Vec::new();
    for (dir, package, _) in LAYERS {
        let src = root().join(dir).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let has_unsafe = files
            .iter()
            .any(|f| fs::read_to_string(f).unwrap().lines().any(uses_unsafe));
        if has_unsafe {
            continue;
        }
        for top in ["lib.rs", "main.rs"] {
            let p = src.join(top);
            if p.is_file()
                && !fs::read_to_string(&p)
                    .unwrap()
                    .contains("#![forbid(unsafe_code)]")
            {
                problems.push(format!(
                    "{package} has no unsafe code: src/{top} should say #![forbid(unsafe_code)]"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_unsafe_detector_sees_code_not_words() {
    assert!(uses_unsafe("    unsafe { x.read() }"));
    assert!(uses_unsafe("pub unsafe fn f() {}"));
    assert!(uses_unsafe("unsafe impl Send for X {}"));
    assert!(uses_unsafe("pub unsafe extern \"C\" fn f() {}"));
    assert!(!uses_unsafe("/// the segment has unsafe permissions"));
    assert!(!uses_unsafe("    let m = \"unsafe { mode }\";"));
    assert!(!uses_unsafe("// unsafe { }"));
}

/// The `cargo xtask` commands: the command names of xtask's usage text.
fn xtask_commands() -> Vec<String> {
    let main = fs::read_to_string(root().join("xtask/src/main.rs")).unwrap();
    let usage = main
        .split_once("commands:")
        .and_then(|(_, rest)| rest.split_once("environment:"))
        .unwrap()
        .0;
    usage
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The `qadataswap` subcommands: the CLI's `Cmd` variants in kebab case.
fn cli_commands() -> Vec<String> {
    let lib = fs::read_to_string(root().join("crates/qadataswap-cli/src/lib.rs")).unwrap();
    let body = lib
        .split_once("enum Cmd {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .unwrap()
        .0;
    body.lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .filter_map(|l| {
            let w = l.trim().split(|c: char| !c.is_alphanumeric()).next()?;
            w.chars().next().filter(char::is_ascii_uppercase)?;
            let mut kebab = String::new();
            for (i, c) in w.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    kebab.push('-');
                }
                kebab.push(c.to_ascii_lowercase());
            }
            Some(kebab)
        })
        .collect()
}

fn docs() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in ["README.md", "CONTRIBUTING.md", "bindings/python/README.md"] {
        out.insert(f.to_owned(), fs::read_to_string(root().join(f)).unwrap());
    }
    for e in fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            out.insert(
                p.strip_prefix(root()).unwrap().display().to_string(),
                fs::read_to_string(&p).unwrap(),
            );
        }
    }
    for e in fs::read_dir(root().join("crates")).unwrap() {
        let p = e.unwrap().path().join("README.md");
        if p.is_file() {
            out.insert(
                p.strip_prefix(root()).unwrap().display().to_string(),
                fs::read_to_string(&p).unwrap(),
            );
        }
    }
    out
}

/// The word after each occurrence of `prefix` (as a whole word) in `text`.
fn words_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before
            .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '/' || c == '.')
        {
            continue;
        }
        let word: &str = rest
            .split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .next()
            .unwrap_or("");
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

#[test]
fn the_docs_name_only_commands_that_exist() {
    let xtask = xtask_commands();
    assert!(
        xtask.contains(&"test".to_owned()) && xtask.contains(&"demo".to_owned()),
        "{xtask:?}"
    );
    let cli = cli_commands();
    assert!(
        cli.contains(&"gc".to_owned()) && cli.contains(&"inspect".to_owned()),
        "{cli:?}"
    );
    let mut problems = Vec::new();
    for (file, text) in docs() {
        for w in words_after(&text, "cargo xtask ") {
            if !xtask.iter().any(|c| c == w) {
                problems.push(format!(
                    "{file}: `cargo xtask {w}` is not a command (xtask has {xtask:?})"
                ));
            }
        }
        for w in words_after(&text, "qadataswap ") {
            // Prose ("qadataswap segments") is not a command: only words that look like one are checked, those
            // right after the tool's name in a code span or a shell line.
            let looks_like_command = text.contains(&format!("`qadataswap {w}"))
                || text.contains(&format!("$ qadataswap {w}"))
                || text.contains(&format!("\nqadataswap {w}"));
            if looks_like_command && !cli.iter().any(|c| c == w) && !matches!(w, "ls" | "help") {
                problems.push(format!(
                    "{file}: `qadataswap {w}` is not a subcommand (the CLI has {cli:?})"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
