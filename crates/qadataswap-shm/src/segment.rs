//! Named and anonymous segments: create, open, check, map, unlink, list.
//!
//! Named segments are files in `/dev/shm`, which is where glibc's `shm_open` puts them on Linux, so they interoperate
//! with C, C++ and Python `shm_open` users. We call open(2) on `/dev/shm/<name>` ourselves instead of `shm_open` so
//! we can pass `O_NOFOLLOW` (a symbolic link planted under the name is refused, not followed) and inspect the file
//! with fstat on the descriptor we will map (no check-then-open race).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{FallocateFlags, FileType, MemfdFlags, Mode, OFlags, SealFlags, Stat};
use rustix::io::Errno;
use rustix::mm::MapFlags;

use crate::{page_size, Mapping, Protection, SegmentName, ShmError};

/// The directory that holds named POSIX shared-memory segments on Linux.
pub const SHM_DIR: &str = "/dev/shm";

/// The longest debug name accepted by [`Segment::memfd`] (the kernel's limit for `memfd_create`).
const MAX_MEMFD_NAME_LEN: usize = 249;

/// Options for [`Segment::create`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// Permission bits of the new segment, set with fchmod after creation so the umask cannot change them.
    /// Default `0o600`: only this user. Anything with group/other bits is refused by [`Segment::open`] unless the
    /// reader sets [`OpenOptions::allow_shared_mode`].
    pub mode: u32,
    /// Reserve the memory now with fallocate (default `true`), so a full `/dev/shm` fails the create with
    /// [`ShmError::TooLarge`] instead of crashing a process with SIGBUS when it first touches a page. With `false`
    /// the segment is sparse (ftruncate only).
    pub populate: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            mode: 0o600,
            populate: true,
        }
    }
}

impl CreateOptions {
    /// The defaults: mode `0o600`, space reserved.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`CreateOptions::mode`].
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`CreateOptions::populate`].
    pub fn populate(mut self, populate: bool) -> Self {
        self.populate = populate;
        self
    }
}

/// How [`Segment::open`] opens the file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Access {
    /// `O_RDONLY`: only [`Protection::ReadOnly`] mappings are possible.
    ReadOnly,
    /// `O_RDWR`.
    ReadWrite,
}

/// Relaxations of the safety checks of [`Segment::open`]. Both are off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Accept a segment with group or other permission bits set (otherwise [`ShmError::InsecureMode`]).
    pub allow_shared_mode: bool,
    /// Accept a segment owned by another user (otherwise [`ShmError::ForeignOwner`]).
    pub allow_foreign_owner: bool,
}

impl OpenOptions {
    /// The defaults: both checks on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`OpenOptions::allow_shared_mode`].
    pub fn allow_shared_mode(mut self, allow: bool) -> Self {
        self.allow_shared_mode = allow;
        self
    }

    /// Sets [`OpenOptions::allow_foreign_owner`].
    pub fn allow_foreign_owner(mut self, allow: bool) -> Self {
        self.allow_foreign_owner = allow;
        self
    }
}

/// An open segment: owns the file descriptor. Map ranges of it with [`Segment::map`].
///
/// Dropping it closes the descriptor but neither unmaps existing [`Mapping`]s nor removes the name (use
/// [`unlink`]).
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    name: Option<SegmentName>,
    /// For a segment made by [`Segment::create_private`] and not yet published: its private name. Dropping the
    /// segment removes that name (if it is still this file).
    private: Option<SegmentName>,
    /// The name for messages: the segment name, `memfd:<debug name>` or `fd <n>`.
    label: String,
    /// File size as of the last fstat.
    len: AtomicUsize,
    uid: u32,
    mode: u32,
}

impl Segment {
    /// Creates a new named segment of `len` bytes, exclusively: `O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW`, then
    /// fchmod to `opts.mode`, ftruncate to `len` and, with `opts.populate`, fallocate to reserve the memory.
    ///
    /// # Errors
    ///
    /// - [`ShmError::AlreadyExists`] if anything (a segment, a symbolic link, ...) has the name.
    /// - [`ShmError::TooLarge`] if `/dev/shm` has less than `len` bytes available; the name is removed again.
    /// - [`ShmError::PermissionDenied`], or [`ShmError::Io`] for other failures (the name is removed again).
    pub fn create(
        name: &SegmentName,
        len: usize,
        opts: &CreateOptions,
    ) -> Result<Segment, ShmError> {
        let path = path_of(name);
        let label = name.as_str();
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(&path, flags, Mode::from_raw_mode(opts.mode & 0o777)) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => {
                return Err(ShmError::AlreadyExists {
                    name: label.to_owned(),
                })
            }
            Err(Errno::ACCESS | Errno::PERM) => {
                return Err(ShmError::PermissionDenied {
                    name: label.to_owned(),
                })
            }
            Err(e) => return Err(io_error("create", label, e)),
        };
        let created = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => {
                // Cannot prove the name is still ours without the inode; removing it anyway is the lesser evil for
                // a file we created a moment ago with O_EXCL.
                let _ = rustix::fs::unlink(&path);
                return Err(io_error("fstat", label, e));
            }
        };
        if let Err(e) = prepare_new(&fd, label, len, opts) {
            remove_if_same(&path, &created);
            return Err(e);
        }
        Segment::from_fd_parts(fd, Some(name.clone()), label.to_owned())
    }

    /// Creates a segment of `len` bytes that nobody else will open: under a private name (starting with
    /// [`PRIVATE_PREFIX`](crate::PRIVATE_PREFIX), unique to this process), exclusively, with `head` as its first bytes
    /// *before* it grows to `len` and before any memory is reserved, so that whoever finds a leftover (its creator
    /// was killed while reserving gigabytes) can read from `head` whose it is. Publish it under its real name with
    /// [`Segment::publish`] once it is fully built: other processes never see it half-built.
    ///
    /// Dropping an unpublished segment removes its private name.
    ///
    /// # Errors
    ///
    /// As [`Segment::create`]; [`ShmError::InvalidRange`] if `head` is longer than `len`.
    pub fn create_private(
        target: &SegmentName,
        head: &[u8],
        len: usize,
        opts: &CreateOptions,
    ) -> Result<Segment, ShmError> {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let label = target.as_str();
        if head.len() > len {
            return Err(ShmError::InvalidRange {
                name: label.to_owned(),
                offset: 0,
                len: head.len() as u64,
                reason: "the first bytes are longer than the segment",
                page_size: page_size(),
            });
        }
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (private, fd) = loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let candidate = SegmentName::any(format!(
                "{}{}.{}.{nanos:x}",
                crate::PRIVATE_PREFIX,
                std::process::id(),
                SERIAL.fetch_add(1, Ordering::Relaxed)
            ))?;
            match rustix::fs::open(path_of(&candidate), flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => break (candidate, fd),
                // A leftover of an earlier process with our pid: pick the next serial.
                Err(Errno::EXIST) => continue,
                Err(Errno::ACCESS | Errno::PERM) => {
                    return Err(ShmError::PermissionDenied {
                        name: label.to_owned(),
                    })
                }
                Err(e) => return Err(io_error("create", label, e)),
            }
        };
        let mut segment = Segment::from_fd_parts(fd, None, label.to_owned())?;
        segment.private = Some(private);
        // From here on, dropping `segment` removes the private name.
        let mut written = 0;
        while written < head.len() {
            match rustix::io::pwrite(&segment.fd, &head[written..], written as u64) {
                Ok(0) => return Err(io_error("write", label, Errno::NOSPC)),
                Ok(n) => written += n,
                Err(Errno::INTR) => {}
                Err(Errno::NOSPC) => {
                    return Err(ShmError::TooLarge {
                        name: label.to_owned(),
                        requested: len as u64,
                        available: available(&segment.fd),
                    })
                }
                Err(e) => return Err(io_error("write", label, e)),
            }
        }
        prepare_new(&segment.fd, label, len, opts)?;
        segment.refresh_len()?;
        segment.mode = opts.mode & 0o777;
        Ok(segment)
    }

    /// Gives a segment made by [`Segment::create_private`] its real name, atomically and only if nothing has that
    /// name (`renameat2` with `RENAME_NOREPLACE`): exactly one of several processes publishing the same name wins.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`] if the name is taken (the segment keeps its private name, and dropping it removes
    /// it); [`ShmError::InvalidRange`] if the segment is not an unpublished private one; [`ShmError::Io`].
    pub fn publish(&mut self, name: &SegmentName) -> Result<(), ShmError> {
        let Some(private) = self.private.clone() else {
            return Err(ShmError::InvalidRange {
                name: name.as_str().to_owned(),
                offset: 0,
                len: 0,
                reason: "only an unpublished segment from create_private can be published",
                page_size: page_size(),
            });
        };
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            path_of(&private),
            rustix::fs::CWD,
            path_of(name),
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                self.private = None;
                self.name = Some(name.clone());
                self.label = name.as_str().to_owned();
                Ok(())
            }
            Err(Errno::EXIST) => Err(ShmError::AlreadyExists {
                name: name.as_str().to_owned(),
            }),
            Err(Errno::ACCESS | Errno::PERM) => Err(ShmError::PermissionDenied {
                name: name.as_str().to_owned(),
            }),
            Err(e) => Err(io_error("rename", name.as_str(), e)),
        }
    }

    /// Device and inode of the open file: what a name must still refer to for this segment to be "the one".
    ///
    /// # Errors
    ///
    /// [`ShmError::Io`] if fstat fails.
    pub fn file_id(&self) -> Result<FileId, ShmError> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| io_error("fstat", &self.label, e))?;
        Ok(FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Opens an existing named segment, refusing anything that could be a trap: a symbolic link (`O_NOFOLLOW`), a
    /// non-regular file, a file owned by another user, a file other users may read or write.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`], [`ShmError::PermissionDenied`], [`ShmError::NotARegularFile`],
    /// [`ShmError::ForeignOwner`] (unless `opts.allow_foreign_owner`), [`ShmError::InsecureMode`] (unless
    /// `opts.allow_shared_mode`), [`ShmError::Io`].
    pub fn open(
        name: &SegmentName,
        access: Access,
        opts: &OpenOptions,
    ) -> Result<Segment, ShmError> {
        let path = path_of(name);
        let label = name.as_str();
        let access_flags = match access {
            Access::ReadOnly => OFlags::RDONLY,
            Access::ReadWrite => OFlags::RDWR,
        };
        // NONBLOCK: a FIFO planted under the name must not hang us before fstat refuses it. NOCTTY: nor may a
        // terminal device become our controlling terminal.
        let flags =
            access_flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match rustix::fs::open(&path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                return Err(ShmError::NotFound {
                    name: label.to_owned(),
                })
            }
            Err(Errno::ACCESS | Errno::PERM) => {
                return Err(ShmError::PermissionDenied {
                    name: label.to_owned(),
                })
            }
            // ELOOP: the name is a symbolic link (O_NOFOLLOW). EISDIR: a directory opened for writing. ENXIO: a
            // socket or a device without a driver.
            Err(Errno::LOOP | Errno::ISDIR | Errno::NXIO) => {
                return Err(ShmError::NotARegularFile {
                    name: label.to_owned(),
                })
            }
            Err(e) => return Err(io_error("open", label, e)),
        };
        let segment = Segment::from_fd_parts(fd, Some(name.clone()), label.to_owned())?;
        // The descriptor is a regular file now; drop O_NONBLOCK so whoever we pass it to sees a plain descriptor.
        rustix::fs::fcntl_setfl(&segment.fd, OFlags::empty())
            .map_err(|e| io_error("fcntl", label, e))?;
        let expected = rustix::process::geteuid().as_raw();
        if segment.uid != expected && !opts.allow_foreign_owner {
            return Err(ShmError::ForeignOwner {
                name: label.to_owned(),
                uid: segment.uid,
                expected,
            });
        }
        if segment.mode & 0o077 != 0 && !opts.allow_shared_mode {
            return Err(ShmError::InsecureMode {
                name: label.to_owned(),
                mode: segment.mode,
            });
        }
        Ok(segment)
    }

    /// Creates an anonymous, memfd-backed segment of `len` bytes (space reserved with fallocate), for tests and for
    /// passing the descriptor to another process. It is sealed against shrinking (`F_SEAL_SHRINK`), so nobody can
    /// truncate it under a mapping. It has no name and disappears with its last descriptor and mapping.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidName`] if `debug_name` contains NUL or is longer than 249 bytes; [`ShmError::TooLarge`]
    /// if the memory cannot be reserved; [`ShmError::Io`].
    pub fn memfd(debug_name: &str, len: usize) -> Result<Segment, ShmError> {
        let invalid = |reason| ShmError::InvalidName {
            name: debug_name.to_owned(),
            reason,
        };
        if debug_name.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        if debug_name.len() > MAX_MEMFD_NAME_LEN {
            return Err(invalid("is too long for memfd_create (249 bytes at most)"));
        }
        let label = format!("memfd:{debug_name}");
        let fd =
            rustix::fs::memfd_create(debug_name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .map_err(|e| io_error("memfd_create", &label, e))?;
        prepare_new(&fd, &label, len, &CreateOptions::default())?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK)
            .map_err(|e| io_error("fcntl(F_ADD_SEALS)", &label, e))?;
        Segment::from_fd_parts(fd, None, label)
    }

    /// Wraps a descriptor received from another process (or a memfd). It must be a regular file (memfds are); no
    /// owner or mode checks are made, since whoever passed the descriptor vouches for it.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotARegularFile`]; [`ShmError::Io`] if fstat fails.
    pub fn from_fd(fd: OwnedFd) -> Result<Segment, ShmError> {
        let label = format!("fd {}", fd.as_raw_fd());
        Segment::from_fd_parts(fd, None, label)
    }

    fn from_fd_parts(
        fd: OwnedFd,
        name: Option<SegmentName>,
        label: String,
    ) -> Result<Segment, ShmError> {
        let st = rustix::fs::fstat(&fd).map_err(|e| io_error("fstat", &label, e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(ShmError::NotARegularFile { name: label });
        }
        Ok(Segment {
            fd,
            name,
            private: None,
            label,
            len: AtomicUsize::new(size_of(&st)),
            uid: st.st_uid,
            mode: st.st_mode & 0o7777,
        })
    }

    /// The name, for named segments; `None` for memfd and descriptor-passed segments.
    pub fn name(&self) -> Option<&SegmentName> {
        self.name.as_ref()
    }

    /// The file size in bytes as of the last fstat (at open, or the last [`Segment::refresh_len`],
    /// [`Segment::require_len`] or [`Segment::map`]).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether [`Segment::len`] is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file size with fstat and returns it.
    ///
    /// # Errors
    ///
    /// [`ShmError::Io`] if fstat fails.
    pub fn refresh_len(&self) -> Result<usize, ShmError> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| io_error("fstat", &self.label, e))?;
        let len = size_of(&st);
        self.len.store(len, Ordering::Relaxed);
        Ok(len)
    }

    /// The owner's uid, as of open.
    pub fn owner_uid(&self) -> u32 {
        self.uid
    }

    /// The permission bits (`st_mode & 0o7777`), as of open.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The file descriptor, e.g. to pass it to another process.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A new descriptor for the same open file, e.g. to pass it to another process.
    ///
    /// # Errors
    ///
    /// [`ShmError::Io`] if the descriptor cannot be duplicated.
    pub fn try_clone_fd(&self) -> Result<OwnedFd, ShmError> {
        self.fd.try_clone().map_err(|e| ShmError::Io {
            op: "dup",
            name: self.label.clone(),
            source: e,
        })
    }

    /// Checks, with a fresh fstat, that the file is at least `needed` bytes, e.g. the size a header claims. Call it
    /// before touching memory past what was checked: a mapping past the end of the file crashes with SIGBUS.
    ///
    /// # Errors
    ///
    /// [`ShmError::TooSmall`]; [`ShmError::Io`] if fstat fails.
    pub fn require_len(&self, needed: usize) -> Result<(), ShmError> {
        let actual = self.refresh_len()?;
        if actual < needed {
            return Err(ShmError::TooSmall {
                name: self.label.clone(),
                actual: actual as u64,
                needed: needed as u64,
            });
        }
        Ok(())
    }

    /// Maps `[offset, offset + len)` of the segment, `MAP_SHARED`, with protection `prot`; `populate` adds
    /// `MAP_POPULATE` so the pages are faulted in now rather than on first touch.
    ///
    /// The file must be at least `offset + len` bytes (checked with a fresh fstat). The mapping stays valid after
    /// the segment is dropped. A file truncated *after* mapping would still crash its users with SIGBUS on access:
    /// the protocol above must forbid truncation (memfd segments are sealed against it).
    ///
    /// # Errors
    ///
    /// - [`ShmError::InvalidRange`] if `len` is zero or `offset` is not a multiple of [`page_size`].
    /// - [`ShmError::TooSmall`] if the file is shorter than `offset + len`.
    /// - [`ShmError::PermissionDenied`] for a [`Protection::ReadWrite`] mapping of a segment opened read-only.
    /// - [`ShmError::Io`] otherwise (e.g. out of address space).
    pub fn map(
        &self,
        offset: usize,
        len: usize,
        prot: Protection,
        populate: bool,
    ) -> Result<Mapping, ShmError> {
        let invalid = |reason| ShmError::InvalidRange {
            name: self.label.clone(),
            offset: offset as u64,
            len: len as u64,
            reason,
            page_size: page_size(),
        };
        if len == 0 {
            return Err(invalid("the length is zero"));
        }
        if !offset.is_multiple_of(page_size()) {
            return Err(invalid("the offset is not a multiple of the page size"));
        }
        let end = offset
            .checked_add(len)
            .ok_or_else(|| invalid("offset + length overflows"))?;
        self.require_len(end)?;
        let mut flags = MapFlags::SHARED;
        if populate {
            flags |= MapFlags::POPULATE;
        }
        // SAFETY: a null hint lets the kernel pick unused address space, so no existing memory (and no Rust
        // reference) is affected. The new mapping is owned by the Mapping below and handed out as raw pointers only.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot.prot_flags(),
                flags,
                &self.fd,
                offset as u64,
            )
        }
        .map_err(|e| match e {
            Errno::ACCESS => ShmError::PermissionDenied {
                name: self.label.clone(),
            },
            e => io_error("mmap", &self.label, e),
        })?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| ShmError::Io {
            op: "mmap",
            name: self.label.clone(),
            source: io::Error::other("mmap returned a null address"),
        })?;
        // SAFETY: `ptr` is the start of the fresh mapping of `len` bytes just made, which nothing else owns.
        Ok(unsafe { Mapping::from_raw(ptr, len, self.label.clone()) })
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // An unpublished private segment is nobody's: remove its name, if it is still this file.
        if let Some(private) = self.private.take() {
            let _ = unlink_if_same(&private, self);
        }
    }
}

/// Where a file is: device and inode. Two names refer to the same file exactly when these are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// Whether `name` still refers to the file `segment` has open (same device and inode); `Ok(false)` if the name is
/// gone or names another file now.
///
/// # Errors
///
/// [`ShmError::Io`] if fstat or lstat fails for another reason than a missing name.
pub fn names_same_file(name: &SegmentName, segment: &Segment) -> Result<bool, ShmError> {
    let mine = segment.file_id()?;
    match rustix::fs::lstat(path_of(name)) {
        Ok(st) => Ok(st.st_dev == mine.dev && st.st_ino == mine.ino),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(io_error("lstat", name.as_str(), e)),
    }
}

/// Removes `name` only if it still refers to the file `segment` has open (same device and inode): never a segment
/// another process created under the same name since.
///
/// The check and the unlink are two system calls; nothing in this library removes or re-creates a name held by a
/// live writer between them, so for the writer's own close the pair is exact.
///
/// # Errors
///
/// [`ShmError::Replaced`] if the name now refers to another file (left alone); [`ShmError::NotFound`];
/// [`ShmError::Io`].
pub fn unlink_if_same(name: &SegmentName, segment: &Segment) -> Result<(), ShmError> {
    let mine = segment.file_id()?;
    let label = name.as_str();
    let now = match rustix::fs::lstat(path_of(name)) {
        Ok(st) => st,
        Err(Errno::NOENT) => {
            return Err(ShmError::NotFound {
                name: label.to_owned(),
            })
        }
        Err(e) => return Err(io_error("lstat", label, e)),
    };
    if now.st_dev != mine.dev || now.st_ino != mine.ino {
        return Err(ShmError::Replaced {
            name: label.to_owned(),
        });
    }
    unlink(name)
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Removes the name of a segment. Existing descriptors and mappings stay valid; the memory is freed when the last
/// one goes.
///
/// # Errors
///
/// [`ShmError::NotFound`], [`ShmError::PermissionDenied`], [`ShmError::NotARegularFile`] (a directory),
/// [`ShmError::Io`].
pub fn unlink(name: &SegmentName) -> Result<(), ShmError> {
    let label = name.as_str();
    match rustix::fs::unlink(path_of(name)) {
        Ok(()) => Ok(()),
        Err(Errno::NOENT) => Err(ShmError::NotFound {
            name: label.to_owned(),
        }),
        Err(Errno::ACCESS | Errno::PERM) => Err(ShmError::PermissionDenied {
            name: label.to_owned(),
        }),
        Err(Errno::ISDIR) => Err(ShmError::NotARegularFile {
            name: label.to_owned(),
        }),
        Err(e) => Err(io_error("unlink", label, e)),
    }
}

/// Waits until something named `name` exists in `/dev/shm`, up to `timeout`; `Ok(true)` when it does, `Ok(false)`
/// when the time ran out or `cancelled` returned `true` (asked every 100 ms at most: a Python caller checks for
/// Ctrl-C there, an async caller for cancellation).
///
/// No polling: an inotify watch on `/dev/shm` (creations and renames into it, the way this library publishes
/// segments) wakes the waiter, which then checks the name again. The name is checked after the watch is in place,
/// so an appearance between the first look and the watch is never missed.
///
/// # Errors
///
/// [`ShmError::Io`] if `/dev/shm` cannot be watched or polled.
pub fn wait_for_name(
    name: &SegmentName,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<bool, ShmError> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
    let path = path_of(name);
    let exists = || rustix::fs::lstat(&path).is_ok();
    if exists() {
        return Ok(true);
    }
    let label = name.as_str();
    let deadline = Instant::now().checked_add(timeout);
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
        .map_err(|e| io_error("inotify_init", label, e))?;
    inotify::add_watch(
        &fd,
        SHM_DIR,
        WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::ONLYDIR,
    )
    .map_err(|e| io_error("inotify_add_watch /dev/shm", label, e))?;
    let mut drain = [0u8; 4096];
    loop {
        if exists() {
            return Ok(true);
        }
        if cancelled() {
            return Ok(false);
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        if left.is_zero() {
            return Ok(false);
        }
        let slice = left.min(Duration::from_millis(100));
        let ts = Timespec {
            tv_sec: slice.as_secs() as _,
            tv_nsec: slice.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(io_error("poll", label, e)),
        }
        // Empty the queue; what matters is only whether the name exists now.
        while matches!(rustix::io::read(&fd, &mut drain), Ok(n) if n > 0) {}
    }
}

/// An entry of `/dev/shm`, as listed by [`list`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The file name (not validated; non-UTF-8 bytes are replaced).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Owner.
    pub uid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Last modification time.
    pub modified: SystemTime,
    /// Whether it is a regular file; symbolic links and other entries are listed too (not followed) so that a tool
    /// can show and remove them, but [`Segment::open`] refuses them.
    pub regular: bool,
}

/// Every entry of `/dev/shm` whose name starts with `prefix` (all of them for `""`), sorted by name, for tools that
/// list or garbage-collect segments. Entries that vanish while listing are skipped.
///
/// # Errors
///
/// [`ShmError::Io`] if `/dev/shm` cannot be read.
pub fn list(prefix: &str) -> Result<Vec<SegmentInfo>, ShmError> {
    let dir_error = |source| ShmError::Io {
        op: "read /dev/shm",
        name: format!("{prefix}*"),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        // DirEntry::metadata does not follow symbolic links.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ShmError::Io {
                    op: "lstat",
                    name,
                    source,
                })
            }
        };
        out.push(SegmentInfo {
            size: meta.len(),
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
            modified: meta.modified().unwrap_or(UNIX_EPOCH),
            regular: meta.file_type().is_file(),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn path_of(name: &SegmentName) -> String {
    format!("{SHM_DIR}/{name}")
}

fn io_error(op: &'static str, name: &str, e: Errno) -> ShmError {
    ShmError::Io {
        op,
        name: name.to_owned(),
        source: e.into(),
    }
}

fn size_of(st: &Stat) -> usize {
    // st_size is never negative for a regular file; a size beyond the address space cannot be mapped anyway.
    u64::try_from(st.st_size)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX)
}

/// Bytes available to us on the file system of `fd` (0 if unknown).
fn available(fd: &OwnedFd) -> u64 {
    rustix::fs::fstatvfs(fd)
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
        .unwrap_or(0)
}

/// Sets mode, size and (with `populate`) reserves the space of a file we just created.
fn prepare_new(
    fd: &OwnedFd,
    label: &str,
    len: usize,
    opts: &CreateOptions,
) -> Result<(), ShmError> {
    let requested = len as u64;
    let too_large = || ShmError::TooLarge {
        name: label.to_owned(),
        requested,
        available: available(fd),
    };
    rustix::fs::fchmod(fd, Mode::from_raw_mode(opts.mode & 0o777))
        .map_err(|e| io_error("fchmod", label, e))?;
    if opts.populate {
        // Cheap early refusal. fallocate below is the authority (space can go between the two), but checking first
        // spares the system from filling tmpfs page by page only to undo it.
        let avail = available(fd);
        if avail > 0 && requested > avail {
            return Err(ShmError::TooLarge {
                name: label.to_owned(),
                requested,
                available: avail,
            });
        }
    }
    match rustix::fs::ftruncate(fd, requested) {
        Ok(()) => {}
        Err(Errno::FBIG | Errno::INVAL) => return Err(too_large()),
        Err(e) => return Err(io_error("ftruncate", label, e)),
    }
    if opts.populate && len > 0 {
        match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, requested) {
            Ok(()) => {}
            Err(Errno::NOSPC | Errno::FBIG) => return Err(too_large()),
            // A file system without fallocate: the segment stays sparse, as with populate = false.
            Err(Errno::OPNOTSUPP) => {}
            Err(e) => return Err(io_error("fallocate", label, e)),
        }
    }
    Ok(())
}

/// Unlinks `path` if it is still the file `created` (a stranger may have replaced it since).
fn remove_if_same(path: &str, created: &Stat) {
    if let Ok(now) = rustix::fs::lstat(path) {
        if now.st_dev == created.st_dev && now.st_ino == created.st_ino {
            let _ = rustix::fs::unlink(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unlinks the segment when the test ends, even by panic.
    struct Cleanup(SegmentName);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = unlink(&self.0);
        }
    }

    fn test_name(test: &str) -> (SegmentName, Cleanup) {
        let name = SegmentName::new(format!("qads-test-{}-{test}", std::process::id())).unwrap();
        let _ = unlink(&name);
        (name.clone(), Cleanup(name))
    }

    #[test]
    fn create_then_open_sees_the_same_bytes() {
        let (name, _cleanup) = test_name("roundtrip");
        let writer = Segment::create(&name, 10_000, &CreateOptions::default()).unwrap();
        assert_eq!(writer.len(), 10_000);
        assert_eq!(writer.name(), Some(&name));
        let out = writer.map(0, 10_000, Protection::ReadWrite, true).unwrap();
        // SAFETY: inside the mapping; this test is its only user.
        unsafe { out.as_mut_ptr().add(9_999).write(0xAB) };
        let reader = Segment::open(&name, Access::ReadOnly, &OpenOptions::default()).unwrap();
        assert_eq!(reader.len(), 10_000);
        let view = reader.map(0, 10_000, Protection::ReadOnly, true).unwrap();
        // SAFETY: inside the mapping; the write above is done.
        assert_eq!(unsafe { view.as_ptr().add(9_999).read() }, 0xAB);
    }

    #[test]
    fn create_sets_the_exact_mode_whatever_the_umask() {
        let (name, _cleanup) = test_name("mode");
        // The usual umask 022 would turn 0660 into 0640 at open(2); fchmod must restore it.
        let seg = Segment::create(&name, 1, &CreateOptions::new().mode(0o660)).unwrap();
        assert_eq!(seg.mode(), 0o660);
        assert_eq!(seg.owner_uid(), rustix::process::geteuid().as_raw());
        let default = Segment::open(&name, Access::ReadOnly, &OpenOptions::default());
        assert!(
            matches!(default, Err(ShmError::InsecureMode { mode: 0o660, .. })),
            "{default:?}"
        );
        Segment::open(
            &name,
            Access::ReadOnly,
            &OpenOptions::new().allow_shared_mode(true),
        )
        .unwrap();
    }

    #[test]
    fn create_reserves_the_memory_up_front_unless_told_not_to() {
        let (name, _cleanup) = test_name("reserve");
        let len = 1 << 20;
        let seg = Segment::create(&name, len, &CreateOptions::default()).unwrap();
        let st = rustix::fs::fstat(seg.as_fd()).unwrap();
        assert!(
            st.st_blocks as u64 * 512 >= len as u64,
            "only {} blocks allocated",
            st.st_blocks
        );
        drop(seg);
        unlink(&name).unwrap();

        let sparse = Segment::create(&name, len, &CreateOptions::new().populate(false)).unwrap();
        let st = rustix::fs::fstat(sparse.as_fd()).unwrap();
        assert_eq!(st.st_blocks, 0);
        assert_eq!(sparse.len(), len);
    }

    #[test]
    fn create_refuses_a_taken_name() {
        let (name, _cleanup) = test_name("taken");
        let _first = Segment::create(&name, 1, &CreateOptions::default()).unwrap();
        match Segment::create(&name, 1, &CreateOptions::default()) {
            Err(ShmError::AlreadyExists { name: n }) => assert_eq!(n, name.as_str()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn opening_or_unlinking_a_missing_segment_is_not_found_with_advice() {
        let (name, _cleanup) = test_name("missing");
        let err = Segment::open(&name, Access::ReadOnly, &OpenOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ShmError::NotFound { name: n } if n == name.as_str()),
            "{err:?}"
        );
        assert!(err.to_string().contains("start the writer first"), "{err}");
        assert!(matches!(unlink(&name), Err(ShmError::NotFound { .. })));
    }

    #[test]
    fn a_directory_under_the_name_is_not_a_regular_file() {
        let (name, _cleanup) = test_name("dir");
        let path = path_of(&name);
        std::fs::create_dir(&path).unwrap();
        let ro = Segment::open(&name, Access::ReadOnly, &OpenOptions::default());
        let rw = Segment::open(&name, Access::ReadWrite, &OpenOptions::default());
        let rm = unlink(&name);
        std::fs::remove_dir(&path).unwrap();
        assert!(
            matches!(ro, Err(ShmError::NotARegularFile { .. })),
            "{ro:?}"
        );
        assert!(
            matches!(rw, Err(ShmError::NotARegularFile { .. })),
            "{rw:?}"
        );
        assert!(
            matches!(rm, Err(ShmError::NotARegularFile { .. })),
            "{rm:?}"
        );
    }

    #[test]
    fn a_fifo_under_the_name_is_refused_without_hanging() {
        let (name, _cleanup) = test_name("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path_of(&name),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Without O_NONBLOCK the read-only open would wait for a writer forever: open on a thread, with a watchdog.
        let (tx, rx) = std::sync::mpsc::channel();
        let opener = name.clone();
        std::thread::spawn(move || {
            let ro = Segment::open(&opener, Access::ReadOnly, &OpenOptions::default());
            let rw = Segment::open(&opener, Access::ReadWrite, &OpenOptions::default());
            let _ = tx.send((ro, rw));
        });
        let (ro, rw) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("watchdog: opening a FIFO hung");
        assert!(
            matches!(ro, Err(ShmError::NotARegularFile { .. })),
            "{ro:?}"
        );
        assert!(
            matches!(rw, Err(ShmError::NotARegularFile { .. })),
            "{rw:?}"
        );
    }

    #[test]
    fn map_checks_the_range_against_the_file() {
        let page = page_size();
        let seg = Segment::memfd("ranges", 2 * page).unwrap();
        assert!(matches!(
            seg.map(0, 0, Protection::ReadOnly, false),
            Err(ShmError::InvalidRange { .. })
        ));
        assert!(matches!(
            seg.map(1, 1, Protection::ReadOnly, false),
            Err(ShmError::InvalidRange { .. })
        ));
        assert!(matches!(
            seg.map(page, usize::MAX, Protection::ReadOnly, false),
            Err(ShmError::InvalidRange { .. })
        ));
        match seg.map(page, page + 1, Protection::ReadOnly, false) {
            Err(ShmError::TooSmall { actual, needed, .. }) => {
                assert_eq!((actual, needed), (2 * page as u64, 2 * page as u64 + 1));
            }
            other => panic!("{other:?}"),
        }
        let tail = seg.map(page, page, Protection::ReadOnly, false).unwrap();
        assert_eq!(tail.len(), page);
    }

    #[test]
    fn a_read_write_mapping_of_a_read_only_open_is_permission_denied() {
        let (name, _cleanup) = test_name("ro-open");
        let _seg = Segment::create(&name, 4096, &CreateOptions::default()).unwrap();
        let ro = Segment::open(&name, Access::ReadOnly, &OpenOptions::default()).unwrap();
        let res = ro.map(0, 4096, Protection::ReadWrite, false);
        assert!(
            matches!(res, Err(ShmError::PermissionDenied { .. })),
            "{res:?}"
        );
    }

    #[test]
    fn memfd_segments_share_memory_through_their_descriptor_and_cannot_shrink() {
        let seg = Segment::memfd("share", 8192).unwrap();
        assert_eq!(seg.name(), None);
        assert_eq!(seg.len(), 8192);
        let out = seg.map(0, 8192, Protection::ReadWrite, true).unwrap();
        // SAFETY: inside the mapping; this test is its only user.
        unsafe { out.as_mut_ptr().add(5000).write(9) };

        let dup = seg.as_fd().try_clone_to_owned().unwrap();
        let other = Segment::from_fd(dup).unwrap();
        let view = other.map(0, 8192, Protection::ReadOnly, true).unwrap();
        // SAFETY: inside the mapping; the write is done.
        assert_eq!(unsafe { view.as_ptr().add(5000).read() }, 9);

        assert_eq!(
            rustix::fs::ftruncate(seg.as_fd(), 4096),
            Err(Errno::PERM),
            "F_SEAL_SHRINK is set"
        );
        rustix::fs::ftruncate(seg.as_fd(), 16384).unwrap();
        assert_eq!(other.len(), 8192, "len is cached");
        assert_eq!(other.refresh_len().unwrap(), 16384);
        other.require_len(16384).unwrap();
    }

    #[test]
    fn memfd_debug_names_with_nul_or_too_long_are_refused() {
        assert!(matches!(
            Segment::memfd("a\0b", 1),
            Err(ShmError::InvalidName { .. })
        ));
        assert!(matches!(
            Segment::memfd(&"x".repeat(250), 1),
            Err(ShmError::InvalidName { .. })
        ));
        Segment::memfd(&"x".repeat(249), 1).unwrap();
    }

    #[test]
    fn from_fd_refuses_a_directory() {
        let dir = OwnedFd::from(std::fs::File::open("/").unwrap());
        assert!(matches!(
            Segment::from_fd(dir),
            Err(ShmError::NotARegularFile { .. })
        ));
    }

    #[test]
    fn list_shows_segments_by_prefix_with_their_metadata() {
        let (a, _ca) = test_name("list-a");
        let (b, _cb) = test_name("list-b");
        let (other, _co) = test_name("other-list");
        Segment::create(&b, 300, &CreateOptions::default()).unwrap();
        Segment::create(&a, 100, &CreateOptions::default()).unwrap();
        Segment::create(&other, 1, &CreateOptions::default()).unwrap();
        let prefix = format!("qads-test-{}-list-", std::process::id());
        let found = list(&prefix).unwrap();
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, [a.as_str(), b.as_str()]);
        assert_eq!(found[0].size, 100);
        assert_eq!(found[1].size, 300);
        assert_eq!(found[0].mode, 0o600);
        assert_eq!(found[0].uid, rustix::process::geteuid().as_raw());
        assert!(found[0].regular);
        assert!(found[0].modified > UNIX_EPOCH);
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let cases = [
            ShmError::AlreadyExists { name: "x".into() }.to_string(),
            ShmError::ForeignOwner {
                name: "x".into(),
                uid: 1,
                expected: 0,
            }
            .to_string(),
            ShmError::InsecureMode {
                name: "x".into(),
                mode: 0o644,
            }
            .to_string(),
            ShmError::TooLarge {
                name: "x".into(),
                requested: 2,
                available: 1,
            }
            .to_string(),
            ShmError::TooSmall {
                name: "x".into(),
                actual: 1,
                needed: 2,
            }
            .to_string(),
            ShmError::NotARegularFile { name: "x".into() }.to_string(),
        ];
        assert!(cases[0].contains("qadataswap rm x"), "{}", cases[0]);
        assert!(
            cases[1].contains("uid 1") && cases[1].contains("allow_foreign_owner"),
            "{}",
            cases[1]
        );
        assert!(
            cases[2].contains("0644") && cases[2].contains("chmod 600"),
            "{}",
            cases[2]
        );
        assert!(
            cases[3].contains("needs 2 bytes") && cases[3].contains("--shm-size"),
            "{}",
            cases[3]
        );
        assert!(
            cases[4].contains("is 1 bytes but 2 are needed"),
            "{}",
            cases[4]
        );
        assert!(cases[5].contains("not a regular file"), "{}", cases[5]);
    }
}
