//! Suite `profile`: where the hot path's time goes, counted, not guessed. `valgrind --tool=callgrind` runs a
//! child that writes a small frame and reads it back in one process, collecting only inside
//! `SnapshotWriter::write` (one run) or `SnapshotReader::read_next` (another). Instruction counts are exact and
//! repeatable whatever else the machine is doing (unlike times on a shared 2-core machine), so they say which
//! step bounds the small-frame latency and whether a change made it cheaper.
//!
//! Reports, per frame size and call: instructions per call, and the functions that execute most of them
//! (exclusive counts, `callgrind_annotate`). Needs `valgrind` on the PATH; without it the suite says so and writes
//! nothing.

use std::process::Command;

use qadataswap_arrow::{SnapshotReader, SnapshotWriter};

use crate::harness::{arg, frame, ipc_bytes, js, segment_name, sibling, Res};
use crate::Opts;

const ROWS: [usize; 2] = [1, 1000];
/// The calls profiled: (what the child times, the function callgrind collects in).
const CALLS: [(&str, &str); 2] = [
    ("write", "qadataswap_arrow::writer::SnapshotWriter::write"),
    (
        "read_next",
        "qadataswap_arrow::reader::SnapshotReader::read_next",
    ),
];
/// Functions listed per call.
const TOP: usize = 8;
/// The steps of each call, by the function that runs it (inclusive counts: a step includes what it calls).
const STEPS: [(&str, &str, &str); 9] = [
    (
        "write",
        "encode: Arrow IPC metadata built and bodies copied into the slot",
        "qadataswap_arrow::onecopy::encode_frame",
    ),
    (
        "write",
        "of which planning the bodies (Body::plan)",
        "qadataswap_arrow::onecopy::Body::plan",
    ),
    (
        "write",
        "choosing a free slot (the readers' leases scanned)",
        "qadataswap_arrow::writer::RawWriter::wait_for_slot",
    ),
    (
        "write",
        "commit: descriptor, sequence word, counters",
        "qadataswap_arrow::writer::RawWriter::commit_slot",
    ),
    (
        "read_next",
        "finding and leasing the newest frame, then decoding it",
        "qadataswap_arrow::reader::SnapshotReader::try_newest",
    ),
    (
        "read_next",
        "decode: metadata checked, arrays built over the slot",
        "qadataswap_arrow::decode::decode_frame",
    ),
    (
        "read_next",
        "of which arrow-ipc building the arrays",
        "arrow_ipc::reader::RecordBatchDecoder::read_record_batch",
    ),
    (
        "read_next",
        "of which our layout checks before arrow-ipc (LayoutWalk)",
        "qadataswap_arrow::decode::LayoutWalk::batch",
    ),
    (
        "read_next",
        "of which the arrays' layout validation after it",
        "qadataswap_arrow::decode::validate_layout",
    ),
];

struct Profile {
    rows: usize,
    call: &'static str,
    per_call: f64,
    /// (instructions per call, share of the call's instructions, function), most first.
    top: Vec<(f64, f64, String)>,
    /// (step, instructions per call including what it calls) for the call's [`STEPS`] found in the profile.
    steps: Vec<(&'static str, f64)>,
}

/// The profiled loop: `iters` rounds of write() then read_next() of the same `rows`-row frame, after a warm-up.
pub fn child(args: &[String]) -> Res<()> {
    let rows: usize = arg(args, 0)?;
    let iters: u64 = arg(args, 1)?;
    let batch = frame(rows);
    let seg = segment_name(&format!("prof-{rows}"));
    let mut w = SnapshotWriter::builder(&seg)
        .size(3 * (ipc_bytes(&batch)?.len() + (64 << 10)))
        .create()?;
    let r = SnapshotReader::builder(&seg).spin(0).open()?;
    for _ in 0..(iters / 10).max(10) + iters {
        w.write(&batch)?;
        let f = r.read_next(Some(std::time::Duration::from_secs(10)))?;
        if f.batches().first().map_or(0, |b| b.num_rows()) != rows {
            return Err("the profiled read returned another frame".into());
        }
    }
    drop(r);
    w.close()?;
    Ok(())
}

/// `callgrind_annotate`'s lines "  1,234 (12.34%)  file:function" after its PROGRAM TOTALS line.
/// The largest count `callgrind_annotate` gives a function named exactly `name` (inclusive output lists a function
/// once per file its inlined code comes from; the largest line is the whole function).
fn count_of(funcs: &[(f64, String)], name: &str) -> Option<f64> {
    funcs
        .iter()
        .filter(|(_, f)| f.split(" [").next().is_some_and(|n| n.trim() == name))
        .map(|(n, _)| *n)
        .reduce(f64::max)
}

fn parse_annotate(text: &str) -> (f64, Vec<(f64, String)>) {
    let number = |s: &str| s.replace(',', "").parse::<f64>().ok();
    let mut total = 0.0;
    let mut funcs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some(n) = number(count) else { continue };
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or(r, |(_, tail)| tail).trim_start(),
            None => rest,
        };
        if rest.starts_with("PROGRAM TOTALS") {
            total = n;
        } else if total > 0.0 && !rest.is_empty() {
            let name = rest.split_once(':').map_or(rest, |(_, f)| f);
            funcs.push((n, name.trim().to_owned()));
        }
    }
    (total, funcs)
}

fn measure(rows: usize, call: &'static str, func: &str, iters: u64) -> Res<Profile> {
    let out = std::env::temp_dir().join(format!(
        "qads-callgrind-{}-{rows}-{call}.out",
        std::process::id()
    ));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={func}"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(std::env::current_exe()?)
        .args(["--child", "profile", &rows.to_string(), &iters.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("valgrind on the {call} loop failed: {status}").into());
    }
    let annotated = Command::new("callgrind_annotate").arg(&out).output()?;
    let inclusive = Command::new("callgrind_annotate")
        .arg("--inclusive=yes")
        .arg(&out)
        .output()?;
    let _ = std::fs::remove_file(&out);
    let (total, funcs) = parse_annotate(&String::from_utf8_lossy(&annotated.stdout));
    let (_, incl) = parse_annotate(&String::from_utf8_lossy(&inclusive.stdout));
    if total <= 0.0 {
        return Err(format!(
            "callgrind collected nothing inside {func} (was it inlined or renamed?)"
        )
        .into());
    }
    let calls = iters as f64 + (iters / 10).max(10) as f64;
    Ok(Profile {
        rows,
        call,
        per_call: total / calls,
        top: funcs
            .into_iter()
            .take(TOP)
            .map(|(n, f)| (n / calls, 100.0 * n / total, f))
            .collect(),
        steps: STEPS
            .iter()
            .filter(|(c, _, _)| *c == call)
            .filter_map(|&(_, label, f)| count_of(&incl, f).map(|n| (label, n / calls)))
            .collect(),
    })
}

pub fn run(opts: &Opts) -> Res<()> {
    if !Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("profile: valgrind is not installed; skipped (apt-get install valgrind)");
        return Ok(());
    }
    let iters = if opts.quick { 500 } else { 2_000 };
    println!("instructions per call (callgrind, {iters} calls after a warm-up, collected inside the call only)");
    let mut profiles = Vec::new();
    for &rows in &ROWS {
        for (call, func) in CALLS {
            let p = measure(rows, call, func, iters)?;
            println!(
                "  {rows:>5} rows  {call:<9} {:>9.0} instructions per call",
                p.per_call
            );
            for (label, n) in &p.steps {
                println!(
                    "      {n:>8.0}  {:>5.1} %  step: {label}",
                    100.0 * n / p.per_call
                );
            }
            for (n, share, f) in &p.top {
                println!("      {n:>8.0}  {share:>5.1} %  {f}");
            }
            profiles.push(p);
        }
    }
    report(&profiles, opts)
}

fn report(profiles: &[Profile], opts: &Opts) -> Res<()> {
    let Some(json) = &opts.json else {
        return Ok(());
    };
    let mut md = String::from(
        "Instructions per call of the writer's `write()` and the reader's `read_next()` on a frame of (int64, \
         float64, utf8), counted by `valgrind --tool=callgrind` collecting inside the call only (exact and \
         repeatable on a noisy machine). The functions listed execute the most of them (exclusive counts).\n\n\
         | rows | call | instructions per call |\n|---:|---|---:|\n",
    );
    for p in profiles {
        md.push_str(&format!(
            "| {} | `{}` | {:.0} |\n",
            p.rows, p.call, p.per_call
        ));
    }
    md.push_str(
        "\nBy step (inclusive: a step counts what it calls, so the *of which* lines are parts of the line above):\n\n\
         | rows | call | step | instructions | share |\n|---:|---|---|---:|---:|\n",
    );
    for p in profiles {
        for (label, n) in &p.steps {
            md.push_str(&format!(
                "| {} | `{}` | {label} | {n:.0} | {:.1} % |\n",
                p.rows,
                p.call,
                100.0 * n / p.per_call
            ));
        }
    }
    for p in profiles {
        md.push_str(&format!(
            "\n`{}` of {} row(s): {:.0} instructions\n\n| instructions | share | function |\n|---:|---:|---|\n",
            p.call, p.rows, p.per_call
        ));
        for (n, share, f) in &p.top {
            md.push_str(&format!(
                "| {n:.0} | {share:.1} % | `{}` |\n",
                f.replace('|', "\\|")
            ));
        }
    }
    std::fs::write(sibling(json, ".md"), &md)?;
    let items: Vec<String> = profiles
        .iter()
        .map(|p| {
            let top: Vec<String> = p
                .top
                .iter()
                .map(|(n, s, f)| {
                    format!(
                        "{{\"instructions\":{n:.1},\"share_pct\":{s:.2},\"function\":{}}}",
                        js(f)
                    )
                })
                .collect();
            format!(
                "{{\"rows\":{},\"call\":{},\"instructions_per_call\":{:.1},\"top\":[{}]}}",
                p.rows,
                js(p.call),
                p.per_call,
                top.join(",")
            )
        })
        .collect();
    std::fs::write(
        json,
        format!(
            "{{\"bench\":\"e2e-profile\",\"unit\":\"instructions per call (callgrind)\",\"results\":[{}]}}\n",
            items.join(",")
        ),
    )?;
    println!("JSON written to {}", json.display());
    Ok(())
}
