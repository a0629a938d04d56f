//! Validated segment names.

use std::fmt;
use std::str::FromStr;

use crate::ShmError;

/// Names starting with this are a creator's private, not yet published segments (see
/// [`Segment::create_private`](crate::Segment::create_private)); [`SegmentName::new`] refuses them.
pub const PRIVATE_PREFIX: &str = ".qads-new.";

/// The longest accepted name, in bytes (Linux allows 255 for a file name; the rest is headroom for suffixes).
pub const MAX_NAME_LEN: usize = 200;

/// A validated shared-memory segment name: 1 to [`MAX_NAME_LEN`] bytes, no '/', no NUL, no control characters, not
/// "." or "..".
///
/// One leading '/' (POSIX `shm_open` style) is accepted and stripped, so `"/prices"` and `"prices"` name the same
/// segment, `/dev/shm/prices`.
///
/// ```
/// use qadataswap_shm::SegmentName;
/// # fn main() -> Result<(), qadataswap_shm::ShmError> {
/// let name = SegmentName::new("/prices")?;
/// assert_eq!(name.as_str(), "prices");
/// assert!(SegmentName::new("a/b").is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SegmentName(String);

impl SegmentName {
    /// Validates `s` and makes a name of it.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidName`] saying what is wrong: empty, too long, contains '/', NUL or a control character,
    /// or is "." or "..".
    pub fn new(s: impl AsRef<str>) -> Result<Self, ShmError> {
        let given = s.as_ref();
        let invalid = |reason| ShmError::InvalidName {
            name: given.to_owned(),
            reason,
        };
        let name = given.strip_prefix('/').unwrap_or(given);
        if name.is_empty() {
            return Err(invalid("is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(invalid("is too long"));
        }
        if name.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        if name.contains('/') {
            return Err(invalid("contains '/' (only one leading '/' is allowed)"));
        }
        if name == "." || name == ".." {
            return Err(invalid("is \".\" or \"..\""));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("contains a control character"));
        }
        if name.starts_with(PRIVATE_PREFIX) {
            return Err(invalid(
                "starts with \".qads-new.\", which is reserved for segments being created",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// Like [`SegmentName::new`], but also accepts the names of segments being created (starting with
    /// [`PRIVATE_PREFIX`]), for tools that list, inspect and clean up what a creator left behind.
    ///
    /// # Errors
    ///
    /// As [`SegmentName::new`], except for the prefix.
    pub fn any(s: impl AsRef<str>) -> Result<Self, ShmError> {
        let given = s.as_ref();
        let bare = given.strip_prefix('/').unwrap_or(given);
        if let Some(rest) = bare.strip_prefix(PRIVATE_PREFIX) {
            // Validate the rest as an ordinary name, then put the prefix back.
            let _ = Self::new(if rest.is_empty() { "x" } else { rest })?;
            return Ok(Self(bare.to_owned()));
        }
        Self::new(given)
    }

    /// Whether this names a segment still being created (not yet published under its real name).
    pub fn is_private(&self) -> bool {
        self.0.starts_with(PRIVATE_PREFIX)
    }

    /// The name without any leading '/'.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SegmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for SegmentName {
    type Err = ShmError;

    fn from_str(s: &str) -> Result<Self, ShmError> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SegmentName {
    type Error = ShmError;

    fn try_from(s: &str) -> Result<Self, ShmError> {
        Self::new(s)
    }
}

impl TryFrom<String> for SegmentName {
    type Error = ShmError;

    fn try_from(s: String) -> Result<Self, ShmError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_with_a_reason_for_each_rejection() {
        let long = "x".repeat(MAX_NAME_LEN);
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        let slash_long = format!("/{long}");
        // (input, Ok(stored name) or Err(part of the reason))
        let table: &[(&str, Result<&str, &str>)] = &[
            ("prices", Ok("prices")),
            ("/prices", Ok("prices")),
            ("qads-test-12.frame_1", Ok("qads-test-12.frame_1")),
            ("with space", Ok("with space")),
            ("ünïcödé", Ok("ünïcödé")),
            (&long, Ok(&long)),
            (&slash_long, Ok(&long)),
            ("", Err("is empty")),
            ("/", Err("is empty")),
            (&too_long, Err("too long")),
            ("a/b", Err("contains '/'")),
            ("//a", Err("contains '/'")),
            ("a/", Err("contains '/'")),
            ("a\0b", Err("NUL")),
            (".", Err("\".\"")),
            ("..", Err("\".\"")),
            ("/..", Err("\".\"")),
            ("tab\there", Err("control character")),
            ("new\nline", Err("control character")),
        ];
        for (input, expected) in table {
            match (SegmentName::new(input), expected) {
                (Ok(name), Ok(want)) => assert_eq!(name.as_str(), *want, "input {input:?}"),
                (Err(ShmError::InvalidName { name, reason }), Err(want)) => {
                    assert_eq!(&name, input, "the error carries the name as given");
                    assert!(
                        reason.contains(want),
                        "input {input:?}: reason {reason:?} should mention {want:?}"
                    );
                }
                (got, want) => panic!("input {input:?}: got {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn invalid_name_message_says_what_is_wrong_and_what_to_do() {
        let err = SegmentName::new("a/b").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"a/b\""), "{msg}");
        assert!(msg.contains("contains '/'"), "{msg}");
        assert!(msg.contains("printable bytes"), "{msg}");
    }

    #[test]
    fn conversions_agree_with_new() {
        let a: SegmentName = "x".parse().unwrap();
        let b = SegmentName::try_from("/x").unwrap();
        let c = SegmentName::try_from(String::from("x")).unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_string(), "x");
        assert!("a\0".parse::<SegmentName>().is_err());
    }
}
