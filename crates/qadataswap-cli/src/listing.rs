//! `qadataswap ls` and `qadataswap inspect`.

use std::io::Write;

use qadataswap_arrow::inspect::{Inspection, SlotState};
use qadataswap_arrow::layout::{flags, state as hstate};
use qadataswap_arrow::Mode;
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::render::{age, bytes, Table};
use crate::status::{self, Proc, State, Status};

/// A process in JSON output.
#[derive(Serialize)]
struct ProcJson {
    pid: u32,
    alive: bool,
}

/// One `ls` row in JSON.
#[derive(Serialize)]
struct LsJson<'a> {
    name: &'a str,
    size: u64,
    state: State,
    reason: Option<&'a str>,
    mode: Option<&'static str>,
    slots: Option<u32>,
    slot_capacity: Option<u64>,
    format_version: Option<u32>,
    writer: Option<ProcJson>,
    readers_live: usize,
    readers_registered: usize,
    last_seq: Option<u64>,
    last_write_ns: Option<u64>,
    generation: Option<u64>,
}

fn mode_str(m: Option<Mode>) -> Option<&'static str> {
    m.map(|m| match m {
        Mode::Snapshot => "snapshot",
        Mode::Stream => "stream",
    })
}

fn ls_json(s: &Status) -> LsJson<'_> {
    let i = s.inspection.as_ref();
    let valid = i.is_some_and(|i| i.body.is_some());
    let procs = s.processes();
    let readers = procs.iter().filter(|p| p.role == "reader");
    LsJson {
        name: &s.name,
        size: s.size,
        state: s.state,
        reason: s.reason.as_deref(),
        mode: if valid { mode_str(s.mode()) } else { None },
        slots: i.filter(|_| valid).map(|i| i.header.slot_count),
        slot_capacity: i.filter(|_| valid).map(|i| i.header.slot_capacity),
        format_version: i.map(|i| i.header.format_version),
        writer: i.and_then(|i| i.header.writer).map(|w| ProcJson {
            pid: w.pid,
            alive: w.alive,
        }),
        readers_live: readers.clone().filter(|p| p.alive).count(),
        readers_registered: readers.count(),
        last_seq: s.last_seq(),
        last_write_ns: i.map(|i| i.header.last_write_ns).filter(|&t| t != 0),
        generation: i.filter(|_| valid).map(|i| i.header.generation),
    }
}

/// `ls`: print every segment whose name starts with `prefix` (foreign ones only with `all`).
///
/// # Errors
/// If /dev/shm cannot be read, or output fails.
pub fn ls(prefix: &str, all: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    let statuses: Vec<Status> = status::list_all(prefix)?
        .into_iter()
        .filter(|s| all || !s.hidden_by_default())
        .collect();
    if json {
        let rows: Vec<LsJson<'_>> = statuses.iter().map(ls_json).collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "NAME",
        "SIZE",
        "SLOTS",
        "MODE",
        "WRITER",
        "READERS",
        "LAST SEQ",
        "LAST WRITE",
        "STATE",
    ]);
    for s in &statuses {
        let j = ls_json(s);
        let writer = match &j.writer {
            Some(w) => format!("{} ({})", w.pid, if w.alive { "alive" } else { "dead" }),
            None => "-".into(),
        };
        let readers = if j.readers_registered > j.readers_live {
            format!(
                "{} (+{} dead)",
                j.readers_live,
                j.readers_registered - j.readers_live
            )
        } else {
            j.readers_live.to_string()
        };
        let state = match &s.reason {
            Some(r) if s.state != State::Stale => format!("{} ({r})", s.state.as_str()),
            _ => s.state.as_str().to_owned(),
        };
        t.row(vec![
            s.name.clone(),
            bytes(s.size),
            j.slots.map_or("-".into(), |n| n.to_string()),
            j.mode.unwrap_or("-").to_owned(),
            writer,
            readers,
            j.last_seq.map_or("-".into(), |n| n.to_string()),
            age(j.last_write_ns.unwrap_or(0)),
            state,
        ]);
    }
    if t.len() == 0 {
        writeln!(
            out,
            "no qadataswap segments in /dev/shm{}",
            if all {
                ""
            } else {
                " (--all also shows foreign files)"
            }
        )?;
        return Ok(());
    }
    out.write_all(t.render().as_bytes())?;
    Ok(())
}

#[derive(Serialize)]
struct FieldJson {
    name: String,
    data_type: String,
    nullable: bool,
}

#[derive(Serialize)]
struct HeaderJson {
    format_version: u32,
    abi: u32,
    flags: u32,
    persistent: bool,
    total_size: u64,
    mode: Option<&'static str>,
    slot_count: u32,
    slot_capacity: u64,
    reader_capacity: u32,
    schema_capacity: u32,
    created_ns: u64,
    creator: ProcJson,
    state: &'static str,
    writer: Option<ProcJson>,
    generation: u64,
    last_write_ns: u64,
    frames_written: u64,
    bytes_written: u64,
    published_seq: Option<u64>,
    published_slot: Option<usize>,
    waiters: u32,
    stream_head: u64,
    stream_tail: u64,
    stream_end: u64,
    release_waiters: u32,
    schema_version: u64,
    schema_len: u64,
}

#[derive(Serialize)]
struct SlotJson {
    index: usize,
    state: &'static str,
    published: bool,
    frame_seq: Option<u64>,
    rows: Option<u64>,
    bytes: Option<u64>,
    batches: Option<u32>,
    write_ns: Option<u64>,
    compressed: bool,
    leases: u32,
}

#[derive(Serialize)]
struct ReaderJson {
    entry: usize,
    pid: u32,
    alive: bool,
    cursor: u64,
    heartbeat_ns: u64,
    leases: Vec<(usize, u32)>,
}

#[derive(Serialize)]
struct InspectJson<'a> {
    name: &'a str,
    state: State,
    reason: Option<&'a str>,
    file_size: u64,
    owner_uid: Option<u32>,
    permissions: Option<String>,
    header: Option<HeaderJson>,
    schema: Option<Vec<FieldJson>>,
    schema_error: Option<String>,
    slots: Vec<SlotJson>,
    readers: Vec<ReaderJson>,
    processes: Vec<Proc>,
}

fn state_word(s: u32) -> &'static str {
    match s {
        hstate::INITIALISING => "initialising",
        hstate::READY => "ready",
        hstate::CLOSED => "closed",
        hstate::FINISHED => "finished",
        _ => "unknown",
    }
}

fn slot_state(s: SlotState) -> &'static str {
    match s {
        SlotState::Empty => "empty",
        SlotState::Writing => "writing",
        SlotState::Committed => "committed",
    }
}

fn inspect_json(s: &Status) -> InspectJson<'_> {
    let i: Option<&Inspection> = s.inspection.as_ref();
    let header = i.map(|i| {
        let h = &i.header;
        HeaderJson {
            format_version: h.format_version,
            abi: h.abi,
            flags: h.flags,
            persistent: h.flags & flags::PERSISTENT != 0,
            total_size: h.total_size,
            mode: mode_str(h.mode),
            slot_count: h.slot_count,
            slot_capacity: h.slot_capacity,
            reader_capacity: h.reader_capacity,
            schema_capacity: h.schema_capacity,
            created_ns: h.created_ns,
            creator: ProcJson {
                pid: h.creator.pid,
                alive: h.creator.alive,
            },
            state: state_word(h.state),
            writer: h.writer.map(|w| ProcJson {
                pid: w.pid,
                alive: w.alive,
            }),
            generation: h.generation,
            last_write_ns: h.last_write_ns,
            frames_written: h.frames_written,
            bytes_written: h.bytes_written,
            published_seq: h.published.map(|p| p.0),
            published_slot: h.published.map(|p| p.1),
            waiters: h.waiters,
            stream_head: h.stream_head,
            stream_tail: h.stream_tail,
            stream_end: h.stream_end,
            release_waiters: h.release_waiters,
            schema_version: h.schema_version,
            schema_len: h.schema_len,
        }
    });
    let body = i.and_then(|i| i.body.as_ref());
    let (schema, schema_error) = match body.map(|b| &b.schema) {
        Some(Ok(Some(schema))) => (
            Some(
                schema
                    .fields()
                    .iter()
                    .map(|f| FieldJson {
                        name: f.name().clone(),
                        data_type: f.data_type().to_string(),
                        nullable: f.is_nullable(),
                    })
                    .collect(),
            ),
            None,
        ),
        Some(Err(e)) => (None, Some(e.clone())),
        _ => (None, None),
    };
    let slots = body.map_or_else(Vec::new, |b| {
        b.slots
            .iter()
            .map(|sl| {
                let committed = sl.state == SlotState::Committed;
                SlotJson {
                    index: sl.index,
                    state: slot_state(sl.state),
                    published: sl.published,
                    frame_seq: committed.then_some(sl.frame_seq),
                    rows: committed.then_some(sl.rows),
                    bytes: committed.then_some(sl.len),
                    batches: committed.then_some(sl.num_batches),
                    write_ns: committed.then_some(sl.write_ns),
                    compressed: committed && sl.flags & 1 != 0,
                    leases: sl.leases,
                }
            })
            .collect()
    });
    let readers = body.map_or_else(Vec::new, |b| {
        b.readers
            .iter()
            .map(|r| ReaderJson {
                entry: r.index,
                pid: r.process.pid,
                alive: r.process.alive,
                cursor: r.cursor,
                heartbeat_ns: r.heartbeat_ns,
                leases: r.leases.clone(),
            })
            .collect()
    });
    InspectJson {
        name: &s.name,
        state: s.state,
        reason: s.reason.as_deref(),
        file_size: s.size,
        owner_uid: i.map(|i| i.owner_uid),
        permissions: i.map(|i| format!("{:04o}", i.permissions)),
        header,
        schema,
        schema_error,
        slots,
        readers,
        processes: s.processes(),
    }
}

/// `inspect NAME`.
///
/// # Errors
/// [`CliError::NotFound`]; for a foreign, incompatible or corrupt segment, what could be read is printed and then
/// [`CliError::Foreign`] / [`CliError::Incompatible`] is returned (exit code 5).
pub fn inspect(name: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let s = match status::classify(name, None) {
        Ok(s) => s,
        Err(qadataswap_arrow::Error::Shm(qadataswap_shm::ShmError::NotFound { .. })) => {
            return Err(CliError::NotFound {
                name: name.to_owned(),
            })
        }
        Err(qadataswap_arrow::Error::Shm(qadataswap_shm::ShmError::InvalidName { .. })) => {
            return Err(CliError::NotFound {
                name: name.to_owned(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let j = inspect_json(&s);
    if json {
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        print_inspection(&s, &j, out)?;
    }
    refusal(&s).map_or(Ok(()), Err)
}

/// The error for a segment a command must not touch as ours: foreign, incompatible or corrupt.
pub fn refusal(s: &Status) -> Option<CliError> {
    let reason = s.reason.clone().unwrap_or_default();
    match s.state {
        State::Foreign => Some(CliError::Foreign {
            name: s.name.clone(),
            reason,
        }),
        State::Incompatible | State::Corrupt => Some(CliError::Incompatible {
            name: s.name.clone(),
            reason,
        }),
        _ => None,
    }
}

fn print_inspection(s: &Status, j: &InspectJson<'_>, out: &mut dyn Write) -> Result<()> {
    let mut t = Table::new(&["segment", &s.name]);
    let state = match &s.reason {
        Some(r) => format!("{} ({r})", s.state.as_str()),
        None => s.state.as_str().to_owned(),
    };
    t.row(vec!["state".into(), state]);
    let mut file = bytes(s.size);
    if let (Some(uid), Some(perm)) = (j.owner_uid, &j.permissions) {
        file.push_str(&format!(", owner uid {uid}, mode {perm}"));
    }
    t.row(vec!["file".into(), file]);
    if let Some(h) = &j.header {
        let mut fl = Vec::new();
        if h.persistent {
            fl.push("persistent");
        }
        if h.flags & flags::LZ4 != 0 {
            fl.push("lz4");
        }
        if h.flags & flags::ZSTD != 0 {
            fl.push("zstd");
        }
        t.row(vec![
            "format".into(),
            format!(
                "version {}, abi {:#010x}, header state {}{}",
                h.format_version,
                h.abi,
                h.state,
                if fl.is_empty() {
                    String::new()
                } else {
                    format!(", {}", fl.join(" "))
                }
            ),
        ]);
        if s.inspection.as_ref().is_some_and(|i| i.body.is_some()) {
            t.row(vec![
                "layout".into(),
                format!(
                    "{}, {} slots x {}, {} reader entries, schema area {}",
                    h.mode.unwrap_or("?"),
                    h.slot_count,
                    bytes(h.slot_capacity),
                    h.reader_capacity,
                    bytes(u64::from(h.schema_capacity))
                ),
            ]);
        }
        let alive = |a: bool| if a { "alive" } else { "dead" };
        t.row(vec![
            "created".into(),
            format!(
                "{} by pid {} ({})",
                age(h.created_ns),
                h.creator.pid,
                alive(h.creator.alive)
            ),
        ]);
        t.row(vec![
            "writer".into(),
            match &h.writer {
                Some(w) => format!(
                    "pid {} ({}), generation {}",
                    w.pid,
                    alive(w.alive),
                    h.generation
                ),
                None => format!("none, generation {}", h.generation),
            },
        ]);
        t.row(vec![
            "writes".into(),
            format!(
                "{} frames, {}, last {}",
                h.frames_written,
                bytes(h.bytes_written),
                age(h.last_write_ns)
            ),
        ]);
        if h.mode == Some("stream") {
            t.row(vec![
                "stream".into(),
                format!(
                    "head {}, tail {}, end {}",
                    h.stream_head, h.stream_tail, h.stream_end
                ),
            ]);
        } else {
            t.row(vec![
                "published".into(),
                match (h.published_seq, h.published_slot) {
                    (Some(seq), Some(slot)) => format!("frame {seq} in slot {slot}"),
                    _ => "nothing yet".into(),
                },
            ]);
        }
        t.row(vec![
            "waiters".into(),
            format!(
                "{} reader(s) parked, {} writer(s) parked on release",
                h.waiters, h.release_waiters
            ),
        ]);
    }
    out.write_all(t.render().as_bytes())?;
    if let Some(fields) = &j.schema {
        writeln!(
            out,
            "\nschema (version {}):",
            j.header.as_ref().map_or(0, |h| h.schema_version)
        )?;
        let mut t = Table::new(&["  FIELD", "TYPE", "NULLABLE"]);
        for f in fields {
            t.row(vec![
                format!("  {}", f.name),
                f.data_type.clone(),
                if f.nullable { "yes" } else { "no" }.into(),
            ]);
        }
        out.write_all(t.render().as_bytes())?;
    } else if let Some(e) = &j.schema_error {
        writeln!(out, "\nschema: unreadable ({e})")?;
    }
    if !j.slots.is_empty() {
        writeln!(out, "\nslots:")?;
        let mut t = Table::new(&[
            "  SLOT", "STATE", "FRAME", "ROWS", "BYTES", "BATCHES", "WRITTEN", "LEASES",
        ]);
        let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        for sl in &j.slots {
            t.row(vec![
                format!("  {}{}", sl.index, if sl.published { "*" } else { "" }),
                sl.state.into(),
                opt(sl.frame_seq),
                opt(sl.rows),
                sl.bytes.map_or("-".into(), bytes),
                opt(sl.batches.map(u64::from)),
                age(sl.write_ns.unwrap_or(0)),
                sl.leases.to_string(),
            ]);
        }
        out.write_all(t.render().as_bytes())?;
        writeln!(out, "  (* = published)")?;
    }
    if s.inspection.as_ref().is_some_and(|i| i.body.is_some()) {
        if j.readers.is_empty() {
            writeln!(out, "\nreaders: none registered")?;
        } else {
            writeln!(out, "\nreaders:")?;
            let mut t = Table::new(&["  ENTRY", "PID", "ALIVE", "CURSOR", "HEARTBEAT", "LEASES"]);
            for r in &j.readers {
                let leases = if r.leases.is_empty() {
                    "-".to_owned()
                } else {
                    r.leases
                        .iter()
                        .map(|(slot, n)| format!("slot {slot} x{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                t.row(vec![
                    format!("  {}", r.entry),
                    r.pid.to_string(),
                    if r.alive { "yes" } else { "no" }.into(),
                    r.cursor.to_string(),
                    age(r.heartbeat_ns),
                    leases,
                ]);
            }
            out.write_all(t.render().as_bytes())?;
        }
    }
    Ok(())
}
