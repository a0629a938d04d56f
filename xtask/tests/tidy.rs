//! Tidy checks of the repository's shape, run by `cargo test` (in the manner of rust-analyzer's `xtask tidy`):
//!
//! - crate dependencies only point down the layers: shm, sync -> arrow -> stream -> polars and flight -> the umbrella
//!   and the CLI -> the bindings -> xtask;
//! - no crate has a file-level import cycle (file -> file edges from `crate::` and `super::` paths);
//! - every crate without `unsafe` code says so with `#![forbid(unsafe_code)]`, so that none creeps in unseen;
//! - the docs name no `cargo xtask` command, no `qadataswap` subcommand, no `-p` package and no `--test` target
//!   that does not exist.

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
    ("bindings/handle", "qadataswap-handle", 0),
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
        // `[dependencies.qadataswap-x]` names the package in the section itself.
        if let Some(name) = section
            .strip_prefix("dependencies.")
            .or_else(|| section.strip_prefix("build-dependencies."))
        {
            if name.starts_with("qadataswap") && !deps.iter().any(|d| d == name) {
                deps.push(name.to_owned());
            }
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

/// The crates that may use `unsafe` (the house style: only where it buys speed or is required): mmap, futexes and
/// process identity, the mapping's slices, the Arrow C Data Interface, the C ABI, Python capsules. Every other crate
/// has none, in `src/`, `tests/`, `examples/` and `benches/` alike, and says `#![forbid(unsafe_code)]`.
const MAY_USE_UNSAFE: &[&str] = &[
    "qadataswap-shm",
    "qadataswap-sync",
    "qadataswap-arrow",
    "qadataswap-polars",
    "qadataswap-c",
    "qadataswap-python",
];

/// Whether `text` has a line that is exactly `#![forbid(unsafe_code)]` (not in a comment).
fn forbids_unsafe(text: &str) -> bool {
    text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]")
}

#[test]
fn only_the_crates_that_need_unsafe_use_it_and_the_others_forbid_it() {
    let mut problems = Vec::new();
    for (dir, package, _) in LAYERS {
        if *package == "xtask" {
            continue; // its tests hold the unsafe detector's own examples
        }
        let allowed = MAY_USE_UNSAFE.contains(package);
        for sub in ["src", "tests", "examples", "benches"] {
            let d = root().join(dir).join(sub);
            if !d.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            rust_files(&d, &mut files);
            for f in files {
                let text = fs::read_to_string(&f).unwrap();
                if let Some((i, _)) = text.lines().enumerate().find(|(_, l)| uses_unsafe(l)) {
                    if !allowed {
                        problems.push(format!(
                            "{}:{}: {package} may not use unsafe (only {MAY_USE_UNSAFE:?} may): use a safe API \
                             (rustix, std) or move the code into one of them",
                            f.strip_prefix(root()).unwrap_or(&f).display(),
                            i + 1
                        ));
                    }
                }
            }
        }
        if allowed {
            continue;
        }
        for top in ["lib.rs", "main.rs"] {
            let p = root().join(dir).join("src").join(top);
            if p.is_file() && !forbids_unsafe(&fs::read_to_string(&p).unwrap()) {
                problems.push(format!(
                    "{package} has no unsafe code: src/{top} should say #![forbid(unsafe_code)]"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_commented_out_forbid_does_not_count() {
    assert!(forbids_unsafe("//! doc\n#![forbid(unsafe_code)]\n"));
    assert!(!forbids_unsafe("// #![forbid(unsafe_code)]\n"));
    assert!(!forbids_unsafe(
        "//! `#![forbid(unsafe_code)]` is what we want\n"
    ));
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

/// The `cargo xtask` commands: the string arms of `dispatch`'s `match command.as_str()` in xtask/src/main.rs
/// (`-h`/`--help` left out: flags, not commands).
fn xtask_commands() -> Vec<String> {
    let main = fs::read_to_string(root().join("xtask/src/main.rs")).unwrap();
    let arms = main
        .split_once("match command.as_str() {")
        .and_then(|(_, rest)| rest.split_once("other =>"))
        .expect("xtask/src/main.rs: dispatch's `match command.as_str() {` .. `other =>` not found")
        .0;
    let mut out = Vec::new();
    for line in arms.lines() {
        let Some((pattern, _)) = line.split_once("=>") else {
            continue;
        };
        for alt in pattern.split('|') {
            let alt = alt.trim();
            if let Some(name) = alt.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
                if !name.starts_with('-') {
                    out.push(name.to_owned());
                }
            }
        }
    }
    out
}

/// The command names xtask's usage text lists (the first word of its two-space-indented lines).
fn xtask_usage_commands() -> Vec<String> {
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

#[test]
fn xtask_usage_lists_exactly_the_commands_it_dispatches() {
    let mut dispatched = xtask_commands();
    let mut listed = xtask_usage_commands();
    dispatched.sort();
    listed.sort();
    assert_eq!(
        listed, dispatched,
        "xtask/src/main.rs: USAGE (left) and dispatch (right) disagree: list every command `dispatch` runs in USAGE"
    );
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
    let tests = test_targets();
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
        for flag in ["-p ", "--package "] {
            for w in words_after_flag(&text, flag) {
                if layer_of(w).is_none() {
                    problems.push(format!(
                        "{file}: `{flag}{w}` is not a workspace package (see the layer table in xtask/tests/tidy.rs)"
                    ));
                }
            }
        }
        for w in words_after_flag(&text, "--test ") {
            if !tests.iter().any(|t| t == w) {
                problems.push(format!(
                    "{file}: `--test {w}` names no test target (there is no tests/{w}.rs in any crate)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The word (a crate or target name: letters, digits, `-`, `_`) after each occurrence of the flag `flag` in a cargo
/// command (`cargo` earlier on the same line).
fn words_after_flag<'a>(text: &'a str, flag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(flag) {
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let before = &text[line_start..at];
        if before
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_whitespace() && c != '`')
            || !before.contains("cargo ")
        {
            continue;
        }
        let word = text[at + flag.len()..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .next()
            .unwrap_or("");
        if !word.is_empty() && !word.starts_with('-') {
            out.push(word);
        }
    }
    out
}

/// The integration test targets of every workspace member: `tests/NAME.rs` and `tests/NAME/main.rs`.
fn test_targets() -> Vec<String> {
    let mut out = Vec::new();
    for (dir, _, _) in LAYERS {
        let Ok(entries) = fs::read_dir(root().join(dir).join("tests")) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            if p.extension().is_some_and(|x| x == "rs") || p.join("main.rs").is_file() {
                out.push(name);
            }
        }
    }
    out
}

/// A crate's source files as the module each one is: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`, `src/lib.rs`
/// and `src/main.rs` the crate root. Binaries under `src/bin/` are crates of their own and left out.
fn crate_modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.first().is_some_and(|p| p == "bin") {
            continue;
        }
        let last = parts.pop().unwrap();
        let stem = last.trim_end_matches(".rs");
        if parts.is_empty() && matches!(stem, "lib" | "main") {
            // A crate with both has its library at lib.rs; main.rs uses it as an outside crate would.
            if stem == "main" && src.join("lib.rs").is_file() {
                continue;
            }
        } else if stem != "mod" {
            parts.push(stem.to_owned());
        }
        out.insert(parts, rel.to_owned());
    }
    out
}

/// A line of Rust without its comment and with string literals emptied (roughly: enough for paths in code).
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            '\'' if chars.peek() == Some(&'"') => {
                // The char literal '"'.
                chars.next();
                chars.next();
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// The module paths a path tree names, starting at `text` (just after `crate::` or the `super::`s): `a::b::C` is
/// `[a, b, C]`, `a::{b, c::D}` is `[a, b]` and `[a, c, D]`, and `a::{self, B}` is `[a]` and `[a, B]`.
fn path_tree(text: &str) -> Vec<Vec<String>> {
    fn tree(
        s: &mut std::iter::Peekable<std::str::Chars<'_>>,
        prefix: &[String],
        out: &mut Vec<Vec<String>>,
    ) {
        let mut path = prefix.to_vec();
        loop {
            while s.peek().is_some_and(|c| c.is_whitespace()) {
                s.next();
            }
            if s.peek() == Some(&'{') {
                s.next();
                loop {
                    tree(s, &path, out);
                    while s.peek().is_some_and(|c| c.is_whitespace()) {
                        s.next();
                    }
                    match s.next() {
                        Some(',') => {
                            while s.peek().is_some_and(|c| c.is_whitespace()) {
                                s.next();
                            }
                            if s.peek() == Some(&'}') {
                                s.next();
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            }
            let mut word = String::new();
            while let Some(&c) = s.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                word.push(c);
                s.next();
            }
            if word.is_empty() {
                break;
            }
            if word != "self" {
                path.push(word);
            }
            let mut ahead = s.clone();
            if ahead.next() == Some(':') && ahead.next() == Some(':') {
                s.next();
                s.next();
            } else {
                break;
            }
        }
        if path.len() > prefix.len() || !prefix.is_empty() {
            out.push(path);
        }
    }
    let mut out = Vec::new();
    tree(&mut text.chars().peekable(), &[], &mut out);
    out
}

/// The file that holds the item at `path`: the longest prefix of it that is a file's module (the root otherwise).
fn file_of<'m>(
    modules: &'m BTreeMap<Vec<String>, PathBuf>,
    path: &[String],
) -> Option<&'m PathBuf> {
    (0..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

/// One file's uses of other files of its crate: (the file used, the line that uses it), from `crate::` and `super::`
/// paths in code, `use` trees included. Inline modules (`mod tests {`) are followed by their indentation, which
/// rustfmt keeps, so that their `super::` is the file itself.
fn file_uses(
    modules: &BTreeMap<Vec<String>, PathBuf>,
    module: &[String],
    text: &str,
) -> Vec<(PathBuf, usize)> {
    let me = modules.get(module);
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    // Whole `use` statements span lines: the code of the rest of the file is read from each hit on.
    let lines: Vec<String> = text.lines().map(code_of).collect();
    for (n, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        while inline
            .last()
            .is_some_and(|(i, _)| indent <= *i && !line.trim().is_empty())
        {
            if line.trim() == "}" && inline.last().is_some_and(|(i, _)| *i == indent) {
                inline.pop();
                break;
            }
            inline.pop();
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "mod") {
            if words.len() == i + 3 && words[i + 2] == "{" {
                inline.push((indent, words[i + 1].to_owned()));
            }
        }
        let rest_of_file = lines[n..].join("\n");
        let bytes = line.as_bytes();
        for (at, _) in line
            .match_indices("crate::")
            .chain(line.match_indices("super::"))
        {
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || matches!(bytes[at - 1], b'_' | b'$' | b':'))
            {
                continue;
            }
            let mut here: Vec<String> = module.to_vec();
            here.extend(inline.iter().map(|(_, m)| m.clone()));
            let mut after = &rest_of_file[at..];
            let base = if let Some(rest) = after.strip_prefix("crate::") {
                after = rest;
                Vec::new()
            } else {
                while let Some(rest) = after.strip_prefix("super::") {
                    after = rest;
                    here.pop();
                }
                here
            };
            for tail in path_tree(after) {
                let mut path = base.clone();
                path.extend(tail);
                if let Some(file) = file_of(modules, &path) {
                    if Some(file) != me {
                        out.push((file.clone(), n + 1));
                    }
                }
            }
        }
    }
    out
}

/// The strongly connected components of more than one node (Tarjan's algorithm): each is a set of nodes that reach
/// one another, that is, one or more cycles.
fn cycles<N: Ord + Clone>(edges: &BTreeMap<N, Vec<N>>) -> Vec<Vec<N>> {
    struct Walk<'e, N> {
        edges: &'e BTreeMap<N, Vec<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        out: Vec<Vec<N>>,
    }
    impl<N: Ord + Clone> Walk<'_, N> {
        fn visit(&mut self, v: &N) {
            let i = self.index.len();
            self.index.insert(v.clone(), i);
            self.low.insert(v.clone(), i);
            self.stack.push(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    let done = w == *v;
                    scc.push(w);
                    if done {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out.sort();
    walk.out
}

/// The shortest cycle through each node of `knot` (breadth first, inside the knot), each cycle once: the readable
/// form of a strongly connected component.
fn shortest_cycles<N: Ord + Clone>(edges: &BTreeMap<N, Vec<N>>, knot: &[N]) -> Vec<Vec<N>> {
    let mut out: Vec<Vec<N>> = Vec::new();
    for start in knot {
        let mut parent: BTreeMap<N, N> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut found = None;
        while let Some(v) = queue.pop_front() {
            for w in edges.get(&v).into_iter().flatten() {
                if !knot.contains(w) {
                    continue;
                }
                if w == start {
                    found = Some(v.clone());
                    break;
                }
                if !parent.contains_key(w) {
                    parent.insert(w.clone(), v.clone());
                    queue.push_back(w.clone());
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some(mut v) = found else { continue };
        let mut cycle = vec![v.clone()];
        while v != *start {
            v = parent[&v].clone();
            cycle.push(v.clone());
        }
        cycle.reverse();
        // One rotation of each cycle: starting at its least node.
        let least = (0..cycle.len()).min_by_key(|&i| &cycle[i]).unwrap();
        cycle.rotate_left(least);
        if !out.contains(&cycle) {
            out.push(cycle);
        }
    }
    out.sort();
    out
}

#[test]
fn the_cycle_finder_reports_each_knot_once_and_nothing_else() {
    let edges: BTreeMap<&str, Vec<&str>> = [
        ("lib", vec!["a", "b"]),
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
        ("x", vec!["y"]),
        ("y", vec!["x", "d"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"], vec!["x", "y"]]);
    assert_eq!(
        shortest_cycles(&edges, &["a", "b", "c"]),
        vec![vec!["a", "b", "c"]]
    );
    let tree: BTreeMap<&str, Vec<&str>> =
        [("lib", vec!["a", "b"]), ("a", vec!["b"]), ("b", vec![])]
            .into_iter()
            .collect();
    assert!(cycles(&tree).is_empty());
}

#[test]
fn file_uses_follow_crate_and_super_paths_and_use_trees() {
    let modules: BTreeMap<Vec<String>, PathBuf> = [
        (vec![], "lib.rs"),
        (vec!["a"], "a.rs"),
        (vec!["b"], "b/mod.rs"),
        (vec!["b", "c"], "b/c.rs"),
        (vec!["d"], "d.rs"),
    ]
    .into_iter()
    .map(|(m, f)| (m.into_iter().map(str::to_owned).collect(), PathBuf::from(f)))
    .collect();
    let text = "\
use crate::{a::A, b::{self, c::C}};
// crate::d::D in a comment
fn f() -> String { \"crate::d::D in a string\".into() }
fn g() { super::d::go() }
#[cfg(test)]
mod tests {
    use super::*;
}
";
    let used: Vec<(String, usize)> = file_uses(&modules, &["b".to_owned(), "c".to_owned()], text)
        .into_iter()
        .map(|(f, n)| (f.display().to_string(), n))
        .collect();
    assert_eq!(
        used,
        vec![
            ("a.rs".to_owned(), 1),
            ("b/mod.rs".to_owned(), 1),
            ("b/mod.rs".to_owned(), 4),
        ]
    );
}

#[test]
fn no_crate_has_a_file_level_import_cycle() {
    let mut problems = Vec::new();
    for (dir, package, _) in LAYERS {
        let src = root().join(dir).join("src");
        let modules = crate_modules(&src);
        // file -> files it uses, and for each edge the first line that makes it.
        let mut edges: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        let mut witness: BTreeMap<(PathBuf, PathBuf), usize> = BTreeMap::new();
        for (module, file) in &modules {
            let text = fs::read_to_string(src.join(file)).unwrap();
            let out = edges.entry(file.clone()).or_default();
            for (used, line) in file_uses(&modules, module, &text) {
                if !out.contains(&used) {
                    out.push(used.clone());
                }
                witness.entry((file.clone(), used)).or_insert(line);
            }
        }
        for knot in cycles(&edges) {
            let mut why: Vec<String> = shortest_cycles(&edges, &knot)
                .iter()
                .map(|c| {
                    let mut names: Vec<String> =
                        c.iter().map(|f| f.display().to_string()).collect();
                    names.push(names[0].clone());
                    format!("  cycle: {}", names.join(" -> "))
                })
                .collect();
            for ((from, to), line) in &witness {
                if knot.contains(from) && knot.contains(to) {
                    why.push(format!(
                        "    {dir}/src/{}:{line} uses {dir}/src/{}",
                        from.display(),
                        to.display()
                    ));
                }
            }
            let names: Vec<String> = knot.iter().map(|f| f.display().to_string()).collect();
            problems.push(format!(
                "{package}: files that use one another: {}\n{}",
                names.join(", "),
                why.join("\n")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "file-level import cycles (move what both sides need into a file both use, or merge the files):\n{}",
        problems.join("\n")
    );
}

#[test]
fn flag_words_are_read_from_commands_not_from_prose() {
    let text = "run `cargo test -p qadataswap-sync --test loom`\nthe -p flag; x-p nope; `cargo b --package foo_bar`";
    assert_eq!(words_after_flag(text, "-p "), vec!["qadataswap-sync"]);
    assert_eq!(words_after_flag(text, "--test "), vec!["loom"]);
    assert_eq!(words_after_flag(text, "--package "), vec!["foo_bar"]);
}

/// Every numbered section of docs/FORMAT.md has a row in CONTRIBUTING.md's "Where each rule of docs/FORMAT.md
/// lives", and every file a row names exists.
#[test]
fn every_section_of_the_format_names_files_that_exist() {
    let format = fs::read_to_string(root().join("docs/FORMAT.md")).expect("docs/FORMAT.md");
    let contributing = fs::read_to_string(root().join("CONTRIBUTING.md")).expect("CONTRIBUTING.md");
    let start = contributing
        .find("### Where each rule of docs/FORMAT.md lives")
        .expect("CONTRIBUTING.md has a section 'Where each rule of docs/FORMAT.md lives'");
    let rows: Vec<&str> = contributing[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| FORMAT.md"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let mut problems = Vec::new();
    for heading in format.lines().filter(|l| l.starts_with("## ")) {
        let Some(number) = heading[3..]
            .split('.')
            .next()
            .filter(|n| n.parse::<u32>().is_ok())
        else {
            continue;
        };
        let tag = format!("| §{number} ");
        if !rows.iter().any(|r| r.starts_with(&tag)) {
            problems.push(format!(
                "FORMAT.md's '{heading}' has no row (add '{tag}...')"
            ));
        }
    }
    for row in &rows {
        let files: Vec<&str> = row
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| w.contains('/') && w.ends_with(".rs"))
            .collect();
        if files.is_empty() {
            problems.push(format!("row names no file: {row}"));
        }
        for f in files {
            if !root().join(f).is_file() {
                problems.push(format!("{f} does not exist (row: {row})"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "CONTRIBUTING.md's map of FORMAT.md:\n  {}",
        problems.join("\n  ")
    );
}
