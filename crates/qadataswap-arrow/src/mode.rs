//! The segment's mode word (FORMAT.md §3, `mode`).

/// Segment mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Latest snapshot: readers get the newest committed frame.
    Snapshot,
    /// Ordered, lossless stream of chunks.
    Stream,
}

impl Mode {
    /// The header encoding.
    pub fn to_u32(self) -> u32 {
        match self {
            Mode::Snapshot => 1,
            Mode::Stream => 2,
        }
    }
    /// Decode the header value.
    pub fn from_u32(v: u32) -> Option<Mode> {
        match v {
            1 => Some(Mode::Snapshot),
            2 => Some(Mode::Stream),
            _ => None,
        }
    }
}
