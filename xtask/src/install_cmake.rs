//! The step "install: cmake package" of `cargo xtask test` (alone: `cargo xtask install-check`): the C/C++ package
//! is used the way a downstream project uses it. `cmake --install` of the `bindings/c` build into `<tmp>/a`, the
//! prefix renamed to `<tmp>/b` (so a path of the install machine left in a file shows up as a failure), then from
//! `<tmp>/b`:
//!
//! - the library is `libqadataswap_c.so.<version>` with the `.so.<major>` and `.so` links, SONAME
//!   `libqadataswap_c.so.<major>`, and no `.debug_*` section (nor in the static library);
//! - no installed text file names the build machine's paths (the repository, the target dir, the venv, `<tmp>/a`);
//! - `bindings/c/tests/install_consumer` (`find_package(qadataswap REQUIRED COMPONENTS cpp)`, Arrow C++ from the
//!   venv's pyarrow asked at find time) builds with `-Wall -Wextra -Werror` and runs the README's C++ lines as
//!   printed, a stream, and a C program; its programs load `libqadataswap_c.so.<major>` from `<tmp>/b`;
//! - the same project without C++ configures, builds and runs with no Arrow C++ and no Python at all;
//! - `pkg-config --cflags --libs qadataswap` compiles and links a C program that runs.
//!
//! The temporary directory is removed at the end, pass or fail.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::shell::{self, Workspace};
use crate::summary::{Outcome, TestCounts};
use crate::venv;

/// The package's version: the workspace's (xtask shares it), which the CMake project checks it agrees with.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Its major version, the number in the SONAME.
const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");

/// `cargo xtask install-check`: configures `bindings/c` (building the C ABI crate), then runs the checks.
pub fn install_check_command(ws: &Workspace) -> Result<()> {
    let mut tests = TestCounts::default();
    match install_check(ws, &mut tests)? {
        Outcome::Ran => Ok(()),
        Outcome::Skipped(why) => {
            println!("install check skipped: {why}");
            Ok(())
        }
    }
}

/// The step of `cargo xtask test`: every check above, counted into `tests` (a "N passed, N failed in S s" line).
pub fn install_check(ws: &Workspace, tests: &mut TestCounts) -> Result<Outcome> {
    let start = Instant::now();
    // Configuring again is quick, and makes the step correct on its own (the install copies configured files).
    let build = crate::cpp::configure_cpp(ws)?;
    let tmp = TempDir::new("cmake")?;
    let mut run = Run::default();
    let result = checks(ws, &build, tmp.path(), &mut run);
    let line = closing_line(&run, start.elapsed().as_secs_f64());
    println!("{line}");
    tests.add_output(&line);
    drop(tmp);
    result?;
    if run.failed.is_empty() {
        Ok(Outcome::Ran)
    } else {
        Err(Error::Unexpected {
            message: format!("install checks failed: {}", run.failed.join("; ")),
        })
    }
}

/// The checks' tally. A check that fails ends the run: the later ones build on the earlier.
#[derive(Default)]
struct Run {
    passed: u64,
    failed: Vec<String>,
}

impl Run {
    fn check(&mut self, name: &str, body: impl FnOnce() -> Result<String>) -> Result<()> {
        match body() {
            Ok(note) => {
                self.passed += 1;
                if note.is_empty() {
                    println!("install check ok: {name}");
                } else {
                    println!("install check ok: {name} ({note})");
                }
                Ok(())
            }
            Err(err) => {
                println!("install check FAILED: {name}: {err}");
                self.failed.push(name.to_owned());
                Err(err)
            }
        }
    }
}

fn checks(ws: &Workspace, build: &Path, tmp: &Path, run: &mut Run) -> Result<()> {
    let cache = read(&build.join("CMakeCache.txt"))?;
    let libdir = cache_value(&cache, "CMAKE_INSTALL_LIBDIR").unwrap_or_else(|| "lib".to_owned());
    let includedir =
        cache_value(&cache, "CMAKE_INSTALL_INCLUDEDIR").unwrap_or_else(|| "include".to_owned());
    let first = tmp.join("a");
    let prefix = tmp.join("b");
    let realname = format!("libqadataswap_c.so.{VERSION}");
    let soname = format!("libqadataswap_c.so.{MAJOR}");

    run.check("cmake --install puts every file in place", || {
        shell::run(
            ws.command("cmake")
                .arg("--install")
                .arg(build)
                .arg("--prefix")
                .arg(&first),
        )?;
        let lib = first.join(&libdir);
        for file in [
            first.join(&includedir).join("qadataswap/qadataswap.h"),
            first
                .join(&includedir)
                .join("qadataswap/shared_dataframe.h"),
            lib.join(&realname),
            lib.join("cmake/qadataswap/qadataswapConfig.cmake"),
            lib.join("cmake/qadataswap/qadataswapConfigVersion.cmake"),
            lib.join("pkgconfig/qadataswap.pc"),
        ] {
            if !file.is_file() {
                return Err(unexpected(format!("{} was not installed", file.display())));
            }
        }
        for (link, target) in [
            (soname.as_str(), realname.as_str()),
            ("libqadataswap_c.so", soname.as_str()),
        ] {
            let got = fs::read_link(lib.join(link))
                .map_err(|e| Error::io(format!("reading the link {link}"), e))?;
            if got != Path::new(target) {
                return Err(unexpected(format!(
                    "{link} points to {}, not {target}",
                    got.display()
                )));
            }
        }
        Ok(String::new())
    })?;

    fs::rename(&first, &prefix).map_err(|e| Error::io("moving the installed prefix", e))?;
    println!(
        "install check: moved {} to {}",
        first.display(),
        prefix.display()
    );
    let lib = prefix.join(&libdir);

    run.check(
        "no installed text file names a path of this machine",
        || {
            let arrow = venv::pyarrow_paths(ws)?;
            let mut machine: Vec<PathBuf> = vec![
                ws.root.clone(),
                ws.target_dir.clone(),
                venv::venv_dir(ws),
                first.clone(),
                arrow.include_dir,
            ];
            machine.extend(arrow.lib_dirs);
            let mut files = Vec::new();
            walk(&prefix, &mut files)?;
            let mut looked = 0;
            for file in files {
                let bytes = fs::read(&file)
                    .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
                // Libraries carry source paths in their panic messages; only the text files are the package's words.
                if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"!<arch>\n") {
                    continue;
                }
                looked += 1;
                let text = String::from_utf8_lossy(&bytes);
                if let Some(path) = machine
                    .iter()
                    .find(|p| text.contains(p.to_string_lossy().as_ref()))
                {
                    return Err(unexpected(format!(
                    "{} names {}: the package would break when moved or copied to another machine",
                    file.display(),
                    path.display()
                )));
                }
            }
            Ok(format!("{looked} files"))
        },
    )?;

    run.check(&format!("the library's SONAME is {soname}"), || {
        let dynamic = shell::output(ws.command("readelf").arg("-d").arg(lib.join(&realname)))?;
        let want = format!("Library soname: [{soname}]");
        if dynamic.contains(&want) {
            Ok(String::new())
        } else {
            Err(unexpected(format!(
                "readelf -d shows no `{want}`:\n{dynamic}"
            )))
        }
    })?;

    run.check("the installed libraries have no debug sections", || {
        let mut sizes = Vec::new();
        for name in [realname.as_str(), "libqadataswap_c.a"] {
            let file = lib.join(name);
            if !file.exists() {
                continue;
            }
            let sections = shell::output(ws.command("readelf").args(["-S", "-W"]).arg(&file))?;
            if let Some(line) = sections.lines().find(|l| l.contains(".debug_")) {
                return Err(unexpected(format!(
                    "{name} still has debug sections: {}",
                    line.trim()
                )));
            }
            let bytes = fs::metadata(&file)
                .map_err(|e| Error::io(format!("reading {}", file.display()), e))?
                .len();
            sizes.push(format!(
                "{name} {:.1} MiB",
                bytes as f64 / (1u64 << 20) as f64
            ));
        }
        Ok(sizes.join(", "))
    })?;

    let readme = ws.path("README.md");
    let blocks = tmp.join("readme");
    let consumer = ws.path("bindings/c/tests/install_consumer");
    let cpp_build = tmp.join("consumer-cpp");
    run.check(
        "find_package(qadataswap COMPONENTS cpp) builds the README's C++ lines and a C program with -Werror",
        || {
            fs::create_dir_all(&blocks).map_err(|e| Error::io("creating the README blocks dir", e))?;
            let text = read(&readme)?;
            for tag in ["writer", "reader"] {
                let code = readme_block(&text, "cpp", tag)?.replace(
                    "\"mydata\"",
                    &format!("\"mydata-install-{}\"", std::process::id()),
                );
                let file = blocks.join(format!("readme_cpp_{tag}.inc"));
                fs::write(&file, code).map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
            }
            shell::run(
                ws.command("cmake")
                    .arg("-S")
                    .arg(&consumer)
                    .arg("-B")
                    .arg(&cpp_build)
                    .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                    .arg(format!("-DREADME_BLOCKS={}", blocks.display()))
                    .arg(format!(
                        "-DQADATASWAP_PYTHON={}",
                        venv::venv_python(ws).display()
                    )),
            )?;
            shell::run(
                ws.command("cmake")
                    .arg("--build")
                    .arg(&cpp_build)
                    .args(["--parallel", "2"]),
            )?;
            Ok(String::new())
        },
    )?;
    run.check("the README's C++ lines and a stream run", || {
        shell::output(&mut ws.command(cpp_build.join("install_cpp")))
    })?;
    run.check("the C program runs", || {
        shell::output(&mut ws.command(cpp_build.join("install_c")))
    })?;
    run.check(
        &format!("the programs load {soname} from the moved prefix"),
        || {
            let want = format!("{soname} => {}", lib.join(&soname).display());
            for program in ["install_cpp", "install_c"] {
                let deps = shell::output(ws.command("ldd").arg(cpp_build.join(program)))?;
                if !deps.contains(&want) {
                    return Err(unexpected(format!(
                        "ldd {program} shows no `{want}`:\n{deps}"
                    )));
                }
            }
            Ok(String::new())
        },
    )?;

    let c_build = tmp.join("consumer-c");
    run.check("a C-only project needs no Arrow C++ and no Python", || {
        shell::run(
            ws.command("cmake")
                .arg("-S")
                .arg(&consumer)
                .arg("-B")
                .arg(&c_build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                .arg("-DWITH_CPP=OFF")
                .arg(format!(
                    "-DQADATASWAP_PYTHON={}",
                    tmp.join("no-python").display()
                )),
        )?;
        shell::run(ws.command("cmake").arg("--build").arg(&c_build))?;
        shell::output(&mut ws.command(c_build.join("install_c")))
    })?;

    run.check(
        "pkg-config --cflags --libs qadataswap compiles a C program that runs",
        || {
            let flags = shell::output(
                ws.command("pkg-config")
                    .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
                    .args(["--cflags", "--libs", "qadataswap"]),
            )?;
            let program = tmp.join("pkg-config-c");
            shell::run(
                ws.command("cc")
                    .args(["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
                    .arg(ws.path("bindings/c/tests/consumer/main.c"))
                    .args(flags.split_whitespace())
                    .arg("-o")
                    .arg(&program),
            )?;
            shell::output(&mut ws.command(&program)).map(|out| format!("{flags}; {out}"))
        },
    )?;
    Ok(())
}

/// The tally in the form the test counts read (pytest's closing line).
fn closing_line(run: &Run, seconds: f64) -> String {
    format!(
        "{} passed, {} failed in {seconds:.1}s (install: cmake package)",
        run.passed,
        run.failed.len()
    )
}

pub(crate) fn unexpected(message: impl Into<String>) -> Error {
    Error::Unexpected {
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// `NAME:TYPE=value` in a CMakeCache.txt.
fn cache_value(cache: &str, name: &str) -> Option<String> {
    cache.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.split(':').next()? == name).then(|| value.to_owned())
    })
}

/// The code block after `<!-- readme-test: {lang} {tag} -->` in the README (as `crates/qadataswap/tests/readme.rs`
/// reads it).
pub(crate) fn readme_block(readme: &str, lang: &str, tag: &str) -> Result<String> {
    let marker = format!("<!-- readme-test: {lang} {tag} -->\n```{lang}\n");
    let start = readme
        .find(&marker)
        .map(|i| i + marker.len())
        .ok_or_else(|| unexpected(format!("README.md has no `{}`", marker.trim_end())))?;
    let len = readme[start..]
        .find("```")
        .ok_or_else(|| unexpected(format!("README.md: the {lang} {tag} block is not closed")))?;
    Ok(readme[start..start + len].to_owned())
}

/// Every file (not directory, not link) under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let kind = entry
            .file_type()
            .map_err(|e| Error::io(format!("reading {}", entry.path().display()), e))?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// A fresh directory under the system's temp dir, removed (with everything in it) when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// `qadataswap-install-<tag>-<pid>`: one per check, so that two checks never share one.
    pub(crate) fn new(tag: &str) -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("qadataswap-install-{tag}-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("removing the stale {}", dir.display()), e))?;
        }
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(TempDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("xtask: warning: could not remove {}: {e}", self.0.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_blocks_are_found_by_their_marker() {
        let readme = "x\n<!-- readme-test: cpp writer -->\n```cpp\nauto w = 1;\n```\nmore\n";
        assert_eq!(
            readme_block(readme, "cpp", "writer").unwrap(),
            "auto w = 1;\n"
        );
        assert!(readme_block(readme, "cpp", "reader").is_err());
    }

    #[test]
    fn the_closing_line_is_counted_into_the_test_counts() {
        let run = Run {
            passed: 9,
            failed: vec!["x".into()],
        };
        let mut counts = TestCounts::default();
        counts.add_output(&closing_line(&run, 12.0));
        assert_eq!((counts.passed, counts.failed), (9, 1));
    }

    #[test]
    fn cache_values_are_read_by_name_not_prefix() {
        let cache = "CMAKE_INSTALL_LIBDIRX:PATH=no\nCMAKE_INSTALL_LIBDIR:PATH=lib64\n";
        assert_eq!(
            cache_value(cache, "CMAKE_INSTALL_LIBDIR").as_deref(),
            Some("lib64")
        );
    }
}
