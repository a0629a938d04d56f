//! Mapped ranges of a segment.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::mm::{MprotectFlags, ProtFlags};

use crate::{page_size, ShmError};

/// How a mapping (or a part of it) may be accessed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Protection {
    /// `PROT_READ`: writes fault with SIGSEGV.
    ReadOnly,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

impl Protection {
    pub(crate) fn prot_flags(self) -> ProtFlags {
        match self {
            Protection::ReadOnly => ProtFlags::READ,
            Protection::ReadWrite => ProtFlags::READ | ProtFlags::WRITE,
        }
    }

    fn mprotect_flags(self) -> MprotectFlags {
        match self {
            Protection::ReadOnly => MprotectFlags::READ,
            Protection::ReadWrite => MprotectFlags::READ | MprotectFlags::WRITE,
        }
    }
}

/// A `MAP_SHARED` mapping of part of a segment, made by [`Segment::map`](crate::Segment::map). Unmapped on drop.
///
/// It hands out raw pointers only: the memory is shared with other processes, so the protocol on top decides who
/// may read and write what (read shared words through atomics; never hold a `&`/`&mut` into memory another
/// process writes). The mapping stays valid after the [`Segment`](crate::Segment) is dropped or unlinked.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    label: String,
}

// SAFETY: a Mapping is a range of address space that this value alone unmaps; it holds no thread-local state, and
// accesses to the memory go through raw pointers whose users must synchronise anyway (other processes share it).
unsafe impl Send for Mapping {}
// SAFETY: as for Send; `&Mapping` only exposes the address, the length, and mprotect, which the kernel serialises.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Wraps a mapping returned by mmap.
    ///
    /// # Safety
    ///
    /// `ptr` must be the start of a live mapping of exactly `len` bytes (`len > 0`) made by mmap, which the new
    /// value owns: nothing else may unmap it.
    pub(crate) unsafe fn from_raw(ptr: NonNull<u8>, len: usize, label: String) -> Self {
        Self { ptr, len, label }
    }

    /// The first byte of the mapping (page-aligned).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The first byte of the mapping, for writing. Writes fault if the mapping (or that page) is read-only.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length asked for when mapping, in bytes (the kernel maps whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: empty mappings cannot be made. Present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` lies in `[as_ptr(), as_ptr() + len())`, e.g. to prove that a buffer is zero-copy.
    pub fn contains(&self, addr: usize) -> bool {
        let start = self.ptr.as_ptr() as usize;
        addr >= start && addr - start < self.len
    }

    /// Changes the protection of `[offset, offset + len)` (mprotect), e.g. to make data pages read-only for readers
    /// so a stray write crashes the writer of the bug instead of corrupting data.
    ///
    /// `offset` must be a multiple of [`page_size`]; the kernel rounds `len` up to whole pages.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidRange`] if the range is empty, unaligned or outside the mapping; [`ShmError::Io`] if the
    /// kernel refuses (e.g. `ReadWrite` on a mapping of a segment opened read-only).
    pub fn protect(&self, offset: usize, len: usize, prot: Protection) -> Result<(), ShmError> {
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
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {}
            _ => return Err(invalid("the range extends past the end of the mapping")),
        }
        // SAFETY: the range is inside this mapping (checked above), which we own; changing the protection of our own
        // shared file pages cannot invalidate Rust references, since this type hands out raw pointers only. Writes
        // after making pages read-only fault (SIGSEGV), which is the point and is not undefined behaviour.
        unsafe {
            rustix::mm::mprotect(
                self.ptr.as_ptr().add(offset).cast::<c_void>(),
                len,
                prot.mprotect_flags(),
            )
        }
        .map_err(|e| ShmError::Io {
            op: "mprotect",
            name: self.label.clone(),
            source: e.into(),
        })
    }

    /// Touches every page (a read of one byte each) so later accesses do not page-fault, for mappings made without
    /// `populate`. Safe to call while other processes write: the reads are atomic and their values ignored.
    pub fn prefault(&self) {
        let page = page_size();
        let mut offset = 0;
        while offset < self.len {
            // SAFETY: `offset < len`, so the byte is inside this live mapping, which is readable under both
            // protections; AtomicU8 has the alignment and size of u8, and all accesses here are atomic, so a
            // concurrent write from another process is not a data race.
            let byte = unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(offset)) };
            byte.load(Ordering::Relaxed);
            offset += page;
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping of `len` bytes (from_raw's contract) and this is the only place it is unmapped.
        // munmap can only fail for invalid arguments, which ours are not; nothing useful to do if it did.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Segment;

    /// The permission field ("r--s", "rw-s", ...) of the line of /proc/self/maps that contains `addr`.
    fn perms_at(addr: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let range = fields.next().unwrap();
            let perms = fields.next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let start = usize::from_str_radix(start, 16).unwrap();
            let end = usize::from_str_radix(end, 16).unwrap();
            if (start..end).contains(&addr) {
                return perms.to_owned();
            }
        }
        panic!("{addr:#x} is not mapped");
    }

    #[test]
    fn a_read_only_mapping_is_mapped_without_write_permission() {
        let seg = Segment::memfd("ro-map", 2 * page_size()).unwrap();
        let ro = seg
            .map(0, 2 * page_size(), Protection::ReadOnly, true)
            .unwrap();
        let rw = seg
            .map(0, 2 * page_size(), Protection::ReadWrite, true)
            .unwrap();
        assert_eq!(perms_at(ro.as_ptr() as usize), "r--s");
        assert_eq!(perms_at(rw.as_ptr() as usize), "rw-s");
    }

    #[test]
    fn protect_makes_only_the_given_pages_read_only_and_can_undo_it() {
        let page = page_size();
        let seg = Segment::memfd("protect", 3 * page).unwrap();
        let map = seg.map(0, 3 * page, Protection::ReadWrite, false).unwrap();
        let base = map.as_ptr() as usize;
        map.protect(page, page, Protection::ReadOnly).unwrap();
        assert_eq!(perms_at(base), "rw-s");
        assert_eq!(perms_at(base + page), "r--s");
        assert_eq!(perms_at(base + 2 * page), "rw-s");
        map.protect(page, page, Protection::ReadWrite).unwrap();
        assert_eq!(perms_at(base + page), "rw-s");
    }

    #[test]
    fn protect_refuses_unaligned_empty_and_out_of_range_requests() {
        let page = page_size();
        let seg = Segment::memfd("protect-bad", 2 * page).unwrap();
        let map = seg.map(0, 2 * page, Protection::ReadWrite, false).unwrap();
        for (offset, len, want) in [
            (1, page, "multiple of the page size"),
            (0, 0, "zero"),
            (page, 2 * page, "past the end"),
            (usize::MAX - page + 1, page, "past the end"),
        ] {
            match map.protect(offset, len, Protection::ReadOnly) {
                Err(ShmError::InvalidRange { reason, .. }) => {
                    assert!(reason.contains(want), "{reason}")
                }
                other => panic!("offset {offset} len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn contains_covers_exactly_the_mapped_bytes() {
        let seg = Segment::memfd("contains", 100).unwrap();
        let map = seg.map(0, 100, Protection::ReadOnly, true).unwrap();
        let base = map.as_ptr() as usize;
        assert!(map.contains(base));
        assert!(map.contains(base + 99));
        assert!(!map.contains(base + 100));
        assert!(!map.contains(base - 1));
        assert_eq!(map.len(), 100);
        assert!(!map.is_empty());
    }

    #[test]
    fn prefault_reads_every_page_without_changing_data() {
        let page = page_size();
        let seg = Segment::memfd("prefault", 4 * page).unwrap();
        let map = seg.map(0, 4 * page, Protection::ReadWrite, false).unwrap();
        // SAFETY: inside the mapping; this test is its only user.
        unsafe { map.as_mut_ptr().add(3 * page).write(7) };
        map.prefault();
        // SAFETY: as above.
        assert_eq!(unsafe { map.as_ptr().add(3 * page).read() }, 7);
    }

    #[test]
    fn mappings_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mapping>();
        assert_send_sync::<Segment>();
    }
}
