//! `qadataswap serve` and `qadataswap relay`: the Arrow Flight gateway and the relay of `qadataswap-flight`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{CliError, Result};

/// `serve`'s options, checked by clap.
pub struct ServeArgs {
    pub bind: SocketAddr,
    /// `None`: `--no-auth` (clap requires one of the two).
    pub token_file: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_streams: usize,
    pub max_message_bytes: usize,
}

/// `relay`'s options.
pub struct RelayArgs {
    pub url: String,
    pub local: String,
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub size: Option<usize>,
    pub allow_gaps: bool,
    pub give_up_after: Option<Duration>,
    pub max_message_bytes: usize,
}

#[cfg(feature = "flight")]
pub fn serve(a: &ServeArgs, out: &mut dyn Write) -> Result<()> {
    use qadataswap_flight::{Limits, ServeOptions, Token};
    let token = a.token_file.as_deref().map(Token::from_file).transpose()?;
    if token.is_none() {
        eprintln!(
            "qadataswap: serving WITHOUT authentication (--no-auth): anyone who can reach {} reads and writes your \
             segments",
            a.bind
        );
    }
    let opts = ServeOptions {
        bind: a.bind,
        token,
        tls: a.tls.clone(),
        limits: Limits {
            max_streams: a.max_streams,
            max_message_bytes: a.max_message_bytes,
        },
    };
    let scheme = if a.tls.is_some() { "grpc+tls" } else { "grpc" };
    let mut printed: std::io::Result<()> = Ok(());
    qadataswap_flight::serve(opts, |addr| {
        // One line a script (or a test) can wait for: the port is open from here on.
        printed = writeln!(out, "listening on {scheme}://{addr}").and_then(|()| out.flush());
    })?;
    printed?;
    Ok(())
}

#[cfg(feature = "flight")]
pub fn relay(a: &RelayArgs, out: &mut dyn Write) -> Result<()> {
    use qadataswap_flight::{FlightUrl, RelayEnd, RelayOptions, Token};
    let url: FlightUrl = a.url.parse().map_err(|what| CliError::Invalid { what })?;
    let token = a.token_file.as_deref().map(Token::from_file).transpose()?;
    let opts = RelayOptions {
        url: url.clone(),
        local: a.local.clone(),
        token,
        tls_ca: a.tls_ca.clone(),
        size: a.size,
        allow_gaps: a.allow_gaps,
        give_up_after: a.give_up_after,
        max_message_bytes: a.max_message_bytes,
    };
    writeln!(out, "relaying {url} -> {}", a.local)?;
    out.flush()?;
    let end = qadataswap_flight::relay(opts, |line| eprintln!("qadataswap: {line}"))?;
    match end {
        RelayEnd::StreamFinished { chunks } => writeln!(
            out,
            "the remote stream ended: {chunks} chunk(s) relayed, local stream finished"
        )?,
        RelayEnd::WriterClosed { frames } => writeln!(
            out,
            "the remote writer closed: {frames} frame(s) relayed, local writer closed"
        )?,
        _ => writeln!(out, "the relay ended")?,
    }
    Ok(())
}

#[cfg(not(feature = "flight"))]
pub fn serve(_: &ServeArgs, _: &mut dyn Write) -> Result<()> {
    Err(CliError::NoFlight { command: "serve" })
}

#[cfg(not(feature = "flight"))]
pub fn relay(_: &RelayArgs, _: &mut dyn Write) -> Result<()> {
    Err(CliError::NoFlight { command: "relay" })
}
