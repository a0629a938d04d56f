//! `qadataswap`: see, inspect, read and clean up QADataSwap segments in shared memory.
//!
//! ```text
//! $ qadataswap ls                      # every segment of this library, with its state
//! $ qadataswap inspect prices --json   # header, schema, slots, reader entries
//! $ qadataswap cat prices --rows 5     # the newest snapshot as a table
//! $ qadataswap cat prices --follow     # each new frame, never holding the writer back
//! $ qadataswap cat ticks --follow      # a stream: each chunk, skips reported, until the end of the stream
//! $ qadataswap rm prices               # remove one segment nobody uses
//! $ qadataswap gc                      # remove every segment whose processes are all dead
//! $ qadataswap bench                   # write / read / handoff timings on this machine
//! $ qadataswap serve --token-file tok   # an Arrow Flight gateway to this host's segments (127.0.0.1:8815)
//! $ qadataswap relay flight://hostA:8815/prices prices --token-file tok   # mirror a remote segment here
//! ```
//!
//! `ls` and `inspect` open segments read-only: they never register as a reader, take a lease or write a byte.
//! `cat` is an ordinary reader that copies each frame out and releases it before printing.
//!
//! # States (`ls`, `inspect`)
//! `live` (a live writer), `closed` (writer closed cleanly, segment kept), `writer-dead` (writer died, live readers
//! remain), `stale` (nothing alive attached: `gc` removes it), `initialising` (creator still setting it up),
//! `foreign` (not this library's, or another user's: shown with `ls --all`), `incompatible` (another format
//! version), `corrupt` (impossible header).
//!
//! # Exit codes
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other error |
//! | 2 | bad command line |
//! | 3 | no segment of that name |
//! | 4 | refused: the segment is in use by a live process, or dead processes are still registered (`rm --force`) |
//! | 5 | foreign segment, incompatible version or corrupt header: not touched |
//! | 6 | `cat`: nothing to read (no frame published, or none before `--timeout`) |
//!
//! Errors go to stderr as one line starting with `qadataswap: `; data goes to stdout.
#![forbid(unsafe_code)]

mod bench;
mod cat;
mod clean;
mod error;
#[cfg_attr(not(feature = "flight"), allow(dead_code))]
mod flight;
mod listing;
mod render;
// The classification `ls` shows lives in the arrow layer (the Flight gateway lists segments with it too).
use qadataswap_arrow::listing as status;

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::error::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other error
  2  bad command line
  3  no segment of that name
  4  refused: in use by a live process, or dead processes still registered (rm --force)
  5  foreign segment, incompatible version or corrupt header: left untouched
  6  cat: nothing to read (no frame published, or none before --timeout)

States: live, closed, writer-dead, stale (gc removes it), initialising, foreign (ls --all), incompatible, corrupt.";

/// See, inspect, read and clean up QADataSwap shared-memory segments.
#[derive(Parser, Debug)]
#[command(name = "qadataswap", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List every segment of this library in /dev/shm (read-only: never registers, leases or writes).
    #[command(after_help = EXIT_CODES)]
    Ls {
        /// Only names starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Also list foreign files (other magic, other owner, not regular files).
        #[arg(long, short)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a segment's header, schema, slots and reader entries (read-only).
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// Segment name (as in /dev/shm, without a slash).
        #[arg(value_parser = segment_name)]
        name: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Print the newest snapshot (or stream chunk) as a table, or follow new frames (or chunks).
    #[command(after_help = EXIT_CODES)]
    Cat {
        /// Segment name.
        #[arg(value_parser = segment_name)]
        name: String,
        /// Rows to print per frame (0: all).
        #[arg(long, short = 'n', default_value_t = 20)]
        rows: usize,
        /// Keep printing each new frame until the writer closes or dies (frames published while one is printed
        /// are skipped: snapshots keep only the newest). On a stream: each chunk until the end of the stream
        /// (exit 0) or the writer's death (exit 1); chunks overwritten before they could be read are reported as
        /// skipped. The writer is never held back.
        #[arg(long, short)]
        follow: bool,
        /// With --follow: stop after this many frames.
        #[arg(long)]
        count: Option<u64>,
        /// Seconds to wait for a first frame (default: 5); with --follow also for each next one (default:
        /// forever). `inf`, or more than 1e9 (about 31.7 years), waits forever.
        #[arg(long, value_parser = seconds)]
        timeout: Option<Wait>,
    },
    /// Remove one segment. Refuses a segment in use (exit 4) and a foreign one (exit 5).
    #[command(after_help = EXIT_CODES)]
    Rm {
        /// Segment name.
        #[arg(value_parser = segment_name)]
        name: String,
        /// Remove even though dead processes are still registered, or the header is of another version or
        /// corrupt. Never overrides a live writer or reader, nor a foreign segment.
        #[arg(long)]
        force: bool,
    },
    /// Remove every stale segment: writer and all readers dead.
    #[command(after_help = EXIT_CODES)]
    Gc {
        /// Only names starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Also remove closed (persistent) segments that no live reader uses.
        #[arg(long)]
        closed: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure write bandwidth, read() time and cross-process handoff latency on this machine.
    #[command(after_help = EXIT_CODES)]
    Bench {
        /// Rows of the numeric frame.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Columns (alternating int64 / float64).
        #[arg(long, default_value_t = 4)]
        cols: usize,
        /// Timed iterations of write and of read.
        #[arg(long, default_value_t = 20)]
        iters: usize,
        /// Cross-process round trips (0: skip the handoff).
        #[arg(long, default_value_t = 2000)]
        pings: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve this host's segments over Arrow Flight (gRPC): ListFlights, GetFlightInfo, GetSchema, DoGet, DoPut.
    /// Prints `listening on grpc://ADDR` once the port is open; runs until SIGINT/SIGTERM. See docs/FLIGHT.md.
    #[command(after_help = EXIT_CODES)]
    Serve {
        /// Address to listen on (port 0: any free port). Loopback by default: serving other hosts is a choice.
        #[arg(long, default_value = "127.0.0.1:8815")]
        bind: std::net::SocketAddr,
        /// File holding the bearer token every client must send (`authorization: Bearer <token>`); it must be
        /// yours and `chmod 600`.
        #[arg(long, required_unless_present = "no_auth")]
        token_file: Option<std::path::PathBuf>,
        /// Serve without authentication: anyone who can reach the port reads and writes your segments.
        #[arg(long, conflicts_with = "token_file")]
        no_auth: bool,
        /// PEM certificate chain: serve over TLS (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// DoGet/DoPut calls at once; more are refused with ResourceExhausted.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
        max_streams: u32,
        /// Largest gRPC message sent or received, MiB (a frame's record batch must fit).
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=2047))]
        max_message_mb: u32,
    },
    /// Mirror a remote segment (through its host's `qadataswap serve`) into a local one, reconnecting with backoff
    /// and resuming a stream at the next chunk it did not get.
    #[command(after_help = EXIT_CODES)]
    Relay {
        /// The remote segment: flight://HOST:PORT/NAME, or flights://HOST:PORT/NAME over TLS.
        url: String,
        /// The local segment to write (created with the remote one's size unless --size-mb).
        #[arg(value_parser = segment_name)]
        local: String,
        /// File holding the remote gateway's bearer token (yours, `chmod 600`).
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
        /// PEM file of the authority that signed the gateway's certificate (flights://).
        #[arg(long)]
        tls_ca: Option<std::path::PathBuf>,
        /// Local data size in MiB (default: the remote segment's).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
        size_mb: Option<u32>,
        /// Report chunks lost while disconnected and read on, instead of stopping with an error.
        #[arg(long)]
        allow_gaps: bool,
        /// Stop after this many seconds without a connection delivering frames (default: retry forever).
        #[arg(long, value_parser = seconds)]
        give_up_after: Option<Wait>,
        /// Largest gRPC message accepted, MiB.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=2047))]
        max_message_mb: u32,
    },
    /// (internal, tests) panic, to check that a bug exits with code 1 and a message, not a Rust abort trace.
    #[command(hide = true, name = "panic-for-test")]
    PanicForTest,
    /// (internal) the other process of `bench`'s handoff.
    #[command(hide = true)]
    BenchPeer {
        #[arg(long)]
        ping: String,
        #[arg(long)]
        pong: String,
    },
}

/// The longest finite wait, in seconds; more (or `inf`) means forever.
const FOREVER_SECS: f64 = 1e9;

/// A `--timeout`: a finite duration, or forever.
#[derive(Clone, Copy, Debug)]
enum Wait {
    For(Duration),
    Forever,
}

impl Wait {
    /// As a duration, forever capped at [`FOREVER_SECS`] (callers that need a finite one).
    fn capped(self) -> Duration {
        match self {
            Wait::For(d) => d,
            Wait::Forever => Duration::from_secs(FOREVER_SECS as u64),
        }
    }
    /// As an optional duration: `None` for forever.
    fn limit(self) -> Option<Duration> {
        match self {
            Wait::For(d) => Some(d),
            Wait::Forever => None,
        }
    }
}

/// `--timeout` value: seconds >= 0 (a usage error otherwise, exit 2).
fn seconds(s: &str) -> Result<Wait, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_nan() || v < 0.0 {
        return Err(format!(
            "{s} is not a number of seconds >= 0 (use inf, or any number above {FOREVER_SECS:e}, to wait forever)"
        ));
    }
    if v > FOREVER_SECS {
        return Ok(Wait::Forever);
    }
    Duration::try_from_secs_f64(v)
        .map(Wait::For)
        .map_err(|e| format!("{s}: {e}"))
}

/// A segment name argument, checked as the library checks it (a usage error otherwise, exit 2).
fn segment_name(s: &str) -> Result<String, String> {
    qadataswap_shm::SegmentName::new(s)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| e.to_string())
}

fn run(cli: Cli, out: &mut dyn Write) -> error::Result<()> {
    match cli.command {
        Cmd::Ls { prefix, all, json } => listing::ls(&prefix, all, json, out),
        Cmd::Inspect { name, json } => listing::inspect(&name, json, out),
        Cmd::Cat {
            name,
            rows,
            follow,
            count,
            timeout,
        } => cat::cat(
            &name,
            &cat::CatOptions {
                rows,
                follow,
                count,
                first_timeout: timeout.map_or(Duration::from_secs(5), Wait::capped),
                next_timeout: timeout.and_then(Wait::limit),
            },
            out,
        ),
        Cmd::Rm { name, force } => clean::rm(&name, force, out),
        Cmd::Gc {
            prefix,
            dry_run,
            closed,
            json,
        } => clean::gc(&prefix, dry_run, closed, json, out),
        Cmd::Bench {
            rows,
            cols,
            iters,
            pings,
            json,
        } => bench::bench(
            &bench::BenchOptions {
                rows,
                cols: cols.max(1),
                iters: iters.max(1),
                pings,
            },
            json,
            out,
        ),
        Cmd::BenchPeer { ping, pong } => bench::peer(&ping, &pong),
        Cmd::Serve {
            bind,
            token_file,
            no_auth: _,
            tls_cert,
            tls_key,
            max_streams,
            max_message_mb,
        } => flight::serve(
            &flight::ServeArgs {
                bind,
                token_file,
                tls: tls_cert.zip(tls_key),
                max_streams: max_streams as usize,
                max_message_bytes: (max_message_mb as usize) << 20,
            },
            out,
        ),
        Cmd::Relay {
            url,
            local,
            token_file,
            tls_ca,
            size_mb,
            allow_gaps,
            give_up_after,
            max_message_mb,
        } => flight::relay(
            &flight::RelayArgs {
                url,
                local,
                token_file,
                tls_ca,
                size: size_mb.map(|mb| (mb as usize) << 20),
                allow_gaps,
                give_up_after: give_up_after.and_then(Wait::limit),
                max_message_bytes: (max_message_mb as usize) << 20,
            },
            out,
        ),
        Cmd::PanicForTest => panic!("forced by `qadataswap panic-for-test`"),
    }
}

/// How to start this tool again as a child process (the `bench` handoff's peer): the program and the arguments
/// that come before a subcommand. The binary passes its own path; the Python package passes
/// `[sys.executable, "-m", "qadataswap"]`.
pub type SelfCommand = Vec<std::ffi::OsString>;

static SELF_COMMAND: std::sync::OnceLock<SelfCommand> = std::sync::OnceLock::new();

pub(crate) fn self_command() -> std::io::Result<std::process::Command> {
    match SELF_COMMAND.get().and_then(|c| c.split_first()) {
        Some((program, args)) => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(args);
            Ok(cmd)
        }
        None => Ok(std::process::Command::new(std::env::current_exe()?)),
    }
}

/// Run the tool with `args` (the first is the program name, as in `std::env::args_os`) and return its exit code
/// (see the table above). Prints to stdout and stderr. `self_command` says how to start the tool again (`None`:
/// this executable). Never panics: a bug is reported as one line on stderr and exit code 1.
pub fn main_with(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    self_command: Option<SelfCommand>,
) -> u8 {
    if let Some(c) = self_command {
        let _ = SELF_COMMAND.set(c);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage as u8
            } else {
                ExitCode::Ok as u8
            };
        }
    };
    // A bug must not end in Rust's panic exit (101) with a backtrace hint: say what happened, exit 1. The hook is
    // this call's only: the caller's (a Python interpreter's, say) is put back afterwards.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("qadataswap: internal error (a bug, please report it): {info}");
    }));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, &mut out)));
    std::panic::set_hook(previous);
    let Ok(result) = result else {
        return ExitCode::Error as u8;
    };
    match result {
        Ok(()) => ExitCode::Ok as u8,
        Err(e) => {
            let _ = out.flush();
            if matches!(&e, error::CliError::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                // `qadataswap cat x | head`: the reader of our output left; not an error.
                return ExitCode::Ok as u8;
            }
            eprintln!("qadataswap: {e}");
            e.exit_code() as u8
        }
    }
}
