//! Tickets and descriptors: which segment a Flight call names, and how to read or write it (docs/FLIGHT.md).
//!
//! Both are UTF-8 text, `NAME` or `NAME?option&option=value`, so that any Flight client can type them:
//! `flight.Ticket(b"prices?follow")`, `FlightDescriptor.for_command(b"ticks?mode=stream")`, or a path descriptor
//! `["prices"]`.

use std::time::Duration;

use qadataswap_shm::SegmentName;

/// The longest finite wait in seconds a ticket may ask for; more (or `inf`) means forever.
pub const FOREVER_SECS: f64 = 1e9;

/// How a snapshot `DoGet` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshot {
    /// The newest frame (waiting up to `timeout` for a first one). The default.
    Latest,
    /// The first frame newer than the one published when the call arrived (`next`).
    Next,
    /// The newest frame, then every newer one as it is published, until the writer closes (`follow`). Frames
    /// published while one is being sent are skipped, as for a local snapshot reader.
    Follow,
}

/// What to do when a stream's chunks from `from` on are no longer in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnGap {
    /// Fail with `DataLoss`, naming the chunks that are gone (the default).
    Fail,
    /// Start at the oldest chunk still held; the first message's `seq` says where.
    Skip,
}

/// A parsed `DoGet` ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketSpec {
    /// The segment.
    pub name: String,
    /// Snapshot segments: which frames.
    pub snapshot: Snapshot,
    /// Stream segments: the first chunk wanted (`from=N`, N >= 1); `None`: the oldest chunk the ring holds.
    pub from: Option<u64>,
    /// Stream segments: what to do when `from` is gone.
    pub on_gap: OnGap,
    /// How long to wait for a first frame (snapshot `latest`/`next`), `None`: forever. Default 5 s.
    pub timeout: Option<Duration>,
}

/// A parsed descriptor (`GetFlightInfo`, `GetSchema`, `DoPut`).
#[derive(Clone, Debug, PartialEq)]
pub struct DescriptorSpec {
    /// The segment.
    pub name: String,
    /// `DoPut` creating a segment: a stream (`mode=stream`) instead of a snapshot.
    pub stream: Option<bool>,
    /// `DoPut` creating a segment: its data size in MiB (`size_mb=N`), else the configuration's.
    pub size_mb: Option<usize>,
    /// `DoPut` creating a segment: its slots (`slots=N`), else the configuration's.
    pub slots: Option<usize>,
}

/// A ticket or descriptor that cannot be understood; the message says what was wrong and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// `key` or `key=value` options, in order.
type Options = Vec<(String, Option<String>)>;

fn split(text: &[u8]) -> Result<(String, Options), SpecError> {
    let text = std::str::from_utf8(text).map_err(|_| {
        SpecError("the ticket/descriptor is not UTF-8 text (expected NAME or NAME?options)".into())
    })?;
    let (name, query) = text.split_once('?').unwrap_or((text, ""));
    let name = SegmentName::new(name)
        .map_err(|e| SpecError(format!("bad segment name: {e}")))?
        .as_str()
        .to_owned();
    let mut opts = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (part.to_owned(), None),
        };
        opts.push((k, v));
    }
    Ok((name, opts))
}

fn number<T>(key: &str, v: Option<String>, min: T) -> Result<T, SpecError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v = v.ok_or_else(|| SpecError(format!("option {key} needs a value ({key}=N)")))?;
    match v.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(SpecError(format!(
            "option {key}={v}: expected a whole number >= {min}"
        ))),
    }
}

/// Seconds: finite and >= 0, or `inf` / more than [`FOREVER_SECS`] for forever (`None`).
pub fn seconds(key: &str, v: &str) -> Result<Option<Duration>, SpecError> {
    let s: f64 = v
        .trim()
        .parse()
        .map_err(|_| SpecError(format!("option {key}={v}: not a number of seconds")))?;
    if s.is_nan() || s < 0.0 {
        return Err(SpecError(format!(
            "option {key}={v}: seconds must be >= 0 (inf waits forever)"
        )));
    }
    if s > FOREVER_SECS {
        return Ok(None);
    }
    Duration::try_from_secs_f64(s)
        .map(Some)
        .map_err(|e| SpecError(format!("option {key}={v}: {e}")))
}

const TICKET_OPTIONS: &str = "next, follow, from=N, gap=skip|fail, timeout=SECONDS";
const DESCRIPTOR_OPTIONS: &str = "mode=snapshot|stream, size_mb=N, slots=N";

impl TicketSpec {
    /// Parse a ticket (`NAME[?next|follow][&from=N][&gap=skip][&timeout=S]`).
    ///
    /// # Errors
    /// A bad name, an unknown option, a bad value, or `next` with `follow`.
    pub fn parse(ticket: &[u8]) -> Result<TicketSpec, SpecError> {
        let (name, opts) = split(ticket)?;
        let mut spec = TicketSpec {
            name,
            snapshot: Snapshot::Latest,
            from: None,
            on_gap: OnGap::Fail,
            timeout: Some(Duration::from_secs(5)),
        };
        for (k, v) in opts {
            match (k.as_str(), v.as_deref()) {
                ("next", None) | ("follow", None) if spec.snapshot != Snapshot::Latest => {
                    return Err(SpecError("give one of next and follow, not both".into()))
                }
                ("next", None) => spec.snapshot = Snapshot::Next,
                ("follow", None) => spec.snapshot = Snapshot::Follow,
                ("from", _) => spec.from = Some(number("from", v, 1u64)?),
                ("gap", Some("skip")) => spec.on_gap = OnGap::Skip,
                ("gap", Some("fail")) => spec.on_gap = OnGap::Fail,
                ("timeout", Some(s)) => spec.timeout = seconds("timeout", s)?,
                _ => {
                    return Err(SpecError(format!(
                        "unknown ticket option {k:?}; a ticket is NAME or NAME?options, options: {TICKET_OPTIONS}"
                    )))
                }
            }
        }
        Ok(spec)
    }

    /// The ticket text for this spec (what [`TicketSpec::parse`] reads back).
    pub fn to_text(&self) -> String {
        let mut opts = Vec::new();
        match self.snapshot {
            Snapshot::Latest => {}
            Snapshot::Next => opts.push("next".to_owned()),
            Snapshot::Follow => opts.push("follow".to_owned()),
        }
        if let Some(f) = self.from {
            opts.push(format!("from={f}"));
        }
        if self.on_gap == OnGap::Skip {
            opts.push("gap=skip".into());
        }
        match self.timeout {
            Some(t) if t == Duration::from_secs(5) => {}
            Some(t) => opts.push(format!("timeout={}", t.as_secs_f64())),
            None => opts.push("timeout=inf".into()),
        }
        if opts.is_empty() {
            self.name.clone()
        } else {
            format!("{}?{}", self.name, opts.join("&"))
        }
    }
}

impl DescriptorSpec {
    /// Parse a descriptor: a path of one element (the name), or a command `NAME[?mode=..&size_mb=N&slots=N]`.
    ///
    /// # Errors
    /// A path of other than one element, a bad name, an unknown option or value.
    pub fn parse(path: &[String], cmd: &[u8]) -> Result<DescriptorSpec, SpecError> {
        let (name, opts) = match path {
            [] => split(cmd)?,
            [one] => split(one.as_bytes())?,
            _ => {
                return Err(SpecError(format!(
                    "a path descriptor names one segment, got {} elements",
                    path.len()
                )))
            }
        };
        let mut spec = DescriptorSpec {
            name,
            stream: None,
            size_mb: None,
            slots: None,
        };
        for (k, v) in opts {
            match (k.as_str(), v.as_deref()) {
                ("mode", Some("stream")) => spec.stream = Some(true),
                ("mode", Some("snapshot")) => spec.stream = Some(false),
                ("size_mb", _) => spec.size_mb = Some(number("size_mb", v, 1usize)?),
                ("slots", _) => spec.slots = Some(number("slots", v, 1usize)?),
                _ => {
                    return Err(SpecError(format!(
                        "unknown descriptor option {k:?}; a descriptor is NAME or NAME?options, options: \
                         {DESCRIPTOR_OPTIONS}"
                    )))
                }
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_reads_the_latest_frame_with_the_default_wait() {
        let t = TicketSpec::parse(b"prices").unwrap();
        assert_eq!(t.snapshot, Snapshot::Latest);
        assert_eq!(t.timeout, Some(Duration::from_secs(5)));
        assert_eq!(t.to_text(), "prices");
    }

    #[test]
    fn options_round_trip_through_the_ticket_text() {
        let t = TicketSpec::parse(b"ticks?follow&from=17&gap=skip&timeout=inf").unwrap();
        assert_eq!(t.from, Some(17));
        assert_eq!(t.on_gap, OnGap::Skip);
        assert_eq!(t.timeout, None);
        assert_eq!(TicketSpec::parse(t.to_text().as_bytes()).unwrap(), t);
    }

    #[test]
    fn bad_names_options_and_values_are_refused_with_what_is_accepted() {
        assert!(TicketSpec::parse(b"../etc").is_err());
        assert!(TicketSpec::parse(b"x?bogus")
            .unwrap_err()
            .0
            .contains("follow"));
        assert!(TicketSpec::parse(b"x?from=0").is_err());
        assert!(TicketSpec::parse(b"x?timeout=-1").is_err());
        assert!(TicketSpec::parse(b"x?timeout=nan").is_err());
        assert!(TicketSpec::parse(b"x?timeout=abc").is_err());
        // Absurdly long waits mean forever, never an overflow.
        assert_eq!(TicketSpec::parse(b"x?timeout=1e300").unwrap().timeout, None);
        assert!(TicketSpec::parse(b"x?next&follow").is_err());
        assert!(TicketSpec::parse(&[0xff]).is_err());
        assert!(DescriptorSpec::parse(&["a".into(), "b".into()], b"").is_err());
        let d = DescriptorSpec::parse(&[], b"t?mode=stream&size_mb=8&slots=4").unwrap();
        assert_eq!(
            (d.stream, d.size_mb, d.slots),
            (Some(true), Some(8), Some(4))
        );
    }
}
