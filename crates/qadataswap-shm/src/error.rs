//! The error type of this crate.

use std::io;

/// Everything that can go wrong while creating, opening, mapping or removing a segment.
///
/// Every message says what happened and what to do about it. Sizes are in bytes. `name` is the segment name as
/// given (for anonymous segments, `memfd:<debug name>` or `fd <n>`).
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum ShmError {
    /// The name cannot be used as a POSIX shared-memory name.
    #[error(
        "invalid shared-memory segment name {name:?}: it {reason}; use 1 to {max} printable bytes without '/' or NUL \
         (one leading '/' is allowed and ignored), e.g. \"qads-prices\"",
        max = crate::name::MAX_NAME_LEN
    )]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it, e.g. "contains '/'".
        reason: &'static str,
    },

    /// No segment with this name exists.
    #[error(
        "shared-memory segment '{name}' does not exist: start the writer first, check the name \
         (list segments with `qadataswap ls`), or create it"
    )]
    NotFound {
        /// The missing segment.
        name: String,
    },

    /// Exclusive create found the name taken.
    #[error(
        "shared-memory segment '{name}' already exists: another writer may own it; open it as a reader, pick another \
         name, or remove it with `qadataswap rm {name}` if it is stale"
    )]
    AlreadyExists {
        /// The taken name.
        name: String,
    },

    /// The kernel refused access (file permissions or a read-only file system).
    #[error(
        "permission denied for shared-memory segment '{name}': it belongs to another user or its mode forbids this \
         access; run as the segment's owner or ask the writer to create it for you"
    )]
    PermissionDenied {
        /// The segment.
        name: String,
    },

    /// The segment is owned by another user, so its content cannot be trusted.
    #[error(
        "shared-memory segment '{name}' is owned by uid {uid}, not by this process (euid {expected}): someone else may \
         have planted it, and it was left untouched (`qadataswap rm` never removes another user's segment); if it is \
         stale, have uid {uid} or root delete /dev/shm/{name}, pick another name, or set allow_foreign_owner if \
         sharing across users is intended"
    )]
    ForeignOwner {
        /// The segment.
        name: String,
        /// Its owner.
        uid: u32,
        /// This process's effective uid.
        expected: u32,
    },

    /// The segment is readable or writable by group or others.
    #[error(
        "shared-memory segment '{name}' has mode {mode:04o}, which lets other users read or change it: recreate it with \
         mode 0600 (the default), `chmod 600 /dev/shm/{name}`, or set allow_shared_mode if sharing is intended"
    )]
    InsecureMode {
        /// The segment.
        name: String,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },

    /// The name refers to a symbolic link, directory, FIFO, socket or device instead of a regular file.
    #[error(
        "'{name}' in /dev/shm is not a regular file (symbolic links, directories, FIFOs and devices are refused so \
         nobody can redirect the segment): remove it if it is not yours to keep, or pick another name"
    )]
    NotARegularFile {
        /// The entry.
        name: String,
    },

    /// The segment file is smaller than required (it may have been truncated): mapping past its end would crash
    /// with SIGBUS, so this is refused.
    #[error(
        "shared-memory segment '{name}' is {actual} bytes but {needed} are needed: it was truncated or is not the \
         segment you expect; recreate it from the writer"
    )]
    TooSmall {
        /// The segment.
        name: String,
        /// Its size now.
        actual: u64,
        /// The size required.
        needed: u64,
    },

    /// There is not enough room in /dev/shm for the requested size.
    #[error(
        "shared-memory segment '{name}' needs {requested} bytes but /dev/shm has only {available} available: ask for \
         less, free space (`qadataswap ls`, then `qadataswap rm` stale segments) or enlarge /dev/shm \
         (e.g. `docker run --shm-size`)"
    )]
    TooLarge {
        /// The segment (its name is not left behind).
        name: String,
        /// The size asked for.
        requested: u64,
        /// The bytes available in /dev/shm when the request failed.
        available: u64,
    },

    /// A range is outside the segment or mapping, empty, or not aligned to the page size.
    #[error(
        "invalid range for '{name}': offset {offset}, length {len}: {reason} (the page size is {page_size} bytes); \
         this is a bug in the caller"
    )]
    InvalidRange {
        /// The segment.
        name: String,
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// What is wrong with it.
        reason: &'static str,
        /// The system page size, for reference.
        page_size: usize,
    },

    /// The name no longer refers to the file this process opened: another process removed it and created a new
    /// segment under the same name. That one is not ours and was left alone.
    #[error(
        "shared-memory segment '{name}' was re-created by another process since this one opened it: the new \
         segment is not ours and was left alone (ours has no name any more and disappears with its last user)"
    )]
    Replaced {
        /// The segment.
        name: String,
    },

    /// Any other operating-system error.
    #[error("{op} failed for shared-memory segment '{name}': {source}; check /dev/shm and the system logs")]
    Io {
        /// The failing operation, e.g. "mmap".
        op: &'static str,
        /// The segment.
        name: String,
        /// The error from the kernel.
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::ShmError;

    #[test]
    fn the_foreign_owner_advice_is_not_a_command_that_refuses_foreign_segments() {
        let message = ShmError::ForeignOwner {
            name: "x".into(),
            uid: 1,
            expected: 0,
        }
        .to_string();
        // `qadataswap rm` refuses a segment of another owner (exit 5): advising it sent users in a circle.
        assert!(!message.contains("`qadataswap rm x`"), "{message}");
        assert!(
            message.contains("/dev/shm/x") && message.contains("uid 1"),
            "{message}"
        );
    }
}
