//! The reader table: one [`ReaderEntry`] per reader process, with a lease count per ring slot,
//! so a writer never reuses a slot a reader still reads, and dead readers' leases can be
//! found (pid + start time) and reclaimed.
//!
//! # Layout of one entry (`#[repr(C, align(64))]`, 320 bytes, little-endian on every supported target)
//!
//! | offset | size | field        | meaning |
//! |-------:|-----:|--------------|---------|
//! | 0      | 4    | `pid`        | owner pid; 0 = free |
//! | 4      | 4    | `flags`      | reclaim lock: pid of the process reclaiming this entry, 0 = none |
//! | 8      | 8    | `start_time` | owner start time (`/proc/<pid>/stat` field 22); 0 while being claimed |
//! | 16     | 8    | `heartbeat`  | ns since the UNIX epoch of the owner's last activity (informational) |
//! | 24     | 8    | `cursor`     | stream mode: next chunk sequence this reader will read |
//! | 32     | 8    | `pidns`      | the owner's PID namespace (inode of `/proc/<pid>/ns/pid`); 0 = not recorded |
//! | 40     | 8    | `entry_flags`| bit 0 [`ENTRY_INHERITED`]: registered for a `fork()` child that inherited leases |
//! | 48     | 16   | `reserved`   | 2 x u64, zero |
//! | 64     | 4 x [`MAX_SLOTS`] | `leases` | u32 lease count per slot |
//!
//! Each entry starts on its own 64-byte cache line and is written only by its owner (and by a
//! reclaimer once the owner is dead), so readers never false-share with each other.
//!
//! # Protocol
//!
//! Reader ([`ReaderEntry::try_lease`]): `leases[slot] += 1; fence(SeqCst); re-check the slot's
//! commit word`, undoing the lease if it changed. Writer ([`LeaseTable::claim_slot_for_write`]):
//! `word = odd; fence(SeqCst); sum the leases`, aborting if any. Whichever fence comes first,
//! the other side sees it: a leased slot is never rewritten, and a lease never covers data
//! other than the generation the reader expected.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::primitive::{fence, AtomicU32, AtomicU64, Ordering};
use crate::process::{Liveness, ProcessIdentity};
use crate::seqlock::SeqWord;

/// Lease counters per entry: the most ring slots a segment can have.
#[cfg(not(qadataswap_loom))]
pub const MAX_SLOTS: usize = 64;
/// Lease counters per entry (kept tiny in loom builds to bound the models).
#[cfg(qadataswap_loom)]
pub const MAX_SLOTS: usize = 2;

/// One reader's entry in the table. See the [module docs](self) for the byte layout.
///
/// `Send + Sync` (all fields are atomics). In shared memory a zeroed entry is a free entry.
#[repr(C, align(64))]
pub struct ReaderEntry {
    pid: AtomicU32,
    flags: AtomicU32,
    start_time: AtomicU64,
    heartbeat: AtomicU64,
    cursor: AtomicU64,
    pidns: AtomicU64,
    entry_flags: AtomicU64,
    reserved: [AtomicU64; 2],
    leases: [AtomicU32; MAX_SLOTS],
}

/// `entry_flags` bit: the entry was registered for a `fork()` child with the leases it inherited.
/// Such an owner counts as alive only while it still maps the segment (an `exec` drops the mapping but keeps the
/// pid and start time); the reclaimer checks that.
pub const ENTRY_INHERITED: u64 = 1;

/// Who owns an entry, as the reclaimer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryOwner {
    /// pid and start time.
    pub identity: ProcessIdentity,
    /// The owner's PID namespace (0 = not recorded).
    pub pidns: u64,
    /// [`ENTRY_INHERITED`] and future bits.
    pub flags: u64,
}

#[cfg(not(qadataswap_loom))]
const _: () = {
    assert!(std::mem::size_of::<ReaderEntry>() == 64 + 4 * MAX_SLOTS);
    assert!(std::mem::size_of::<ReaderEntry>() == 320);
    assert!(std::mem::align_of::<ReaderEntry>() == 64);
    assert!(std::mem::offset_of!(ReaderEntry, pid) == 0);
    assert!(std::mem::offset_of!(ReaderEntry, flags) == 4);
    assert!(std::mem::offset_of!(ReaderEntry, start_time) == 8);
    assert!(std::mem::offset_of!(ReaderEntry, heartbeat) == 16);
    assert!(std::mem::offset_of!(ReaderEntry, cursor) == 24);
    assert!(std::mem::offset_of!(ReaderEntry, pidns) == 32);
    assert!(std::mem::offset_of!(ReaderEntry, entry_flags) == 40);
    assert!(std::mem::offset_of!(ReaderEntry, reserved) == 48);
    assert!(std::mem::offset_of!(ReaderEntry, leases) == 64);
};

impl Default for ReaderEntry {
    fn default() -> Self {
        ReaderEntry::new()
    }
}

impl fmt::Debug for ReaderEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leases: Vec<(usize, u32)> = (0..MAX_SLOTS)
            .map(|s| (s, self.lease_count(s)))
            .filter(|&(_, n)| n > 0)
            .collect();
        f.debug_struct("ReaderEntry")
            .field("pid", &self.pid())
            .field("start_time", &self.start_time.load(Ordering::Relaxed))
            .field("cursor", &self.cursor.load(Ordering::Relaxed))
            .field("heartbeat", &self.heartbeat())
            .field("leases", &leases)
            .finish()
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl ReaderEntry {
    /// A free (all-zero) entry, for tables in ordinary memory (tests, models). In shared
    /// memory, zeroed bytes are already free entries.
    #[cfg(not(qadataswap_loom))]
    pub const fn new() -> Self {
        ReaderEntry {
            pid: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            heartbeat: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            pidns: AtomicU64::new(0),
            entry_flags: AtomicU64::new(0),
            reserved: [const { AtomicU64::new(0) }; 2],
            leases: [const { AtomicU32::new(0) }; MAX_SLOTS],
        }
    }

    /// A free (all-zero) entry.
    #[cfg(qadataswap_loom)]
    pub fn new() -> Self {
        ReaderEntry {
            pid: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            heartbeat: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            pidns: AtomicU64::new(0),
            entry_flags: AtomicU64::new(0),
            reserved: std::array::from_fn(|_| AtomicU64::new(0)),
            leases: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// The owner's pid, 0 if the entry is free.
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Acquire)
    }

    /// The owner (pid + start time), `None` if free. The start time is 0 while the entry is
    /// being claimed.
    pub fn identity(&self) -> Option<ProcessIdentity> {
        let pid = self.pid.load(Ordering::Acquire);
        if pid == 0 {
            return None;
        }
        Some(ProcessIdentity {
            pid,
            start_time: self.start_time.load(Ordering::Acquire),
        })
    }

    /// The owner with its PID namespace and entry flags, `None` if free.
    pub fn owner(&self) -> Option<EntryOwner> {
        let identity = self.identity()?;
        Some(EntryOwner {
            identity,
            pidns: self.pidns.load(Ordering::Acquire),
            flags: self.entry_flags.load(Ordering::Acquire),
        })
    }

    /// The stream cursor (next chunk sequence this reader will read).
    pub fn cursor(&self) -> &AtomicU64 {
        &self.cursor
    }

    /// Sets the stream cursor (Release).
    pub fn set_cursor(&self, c: u64) {
        self.cursor.store(c, Ordering::Release);
    }

    /// Leases currently held on `slot` by this entry (0 for a slot out of range).
    pub fn lease_count(&self, slot: usize) -> u32 {
        self.leases
            .get(slot)
            .map_or(0, |l| l.load(Ordering::Acquire))
    }

    /// ns since the UNIX epoch of the owner's last [`touch`](Self::touch) (0 = never).
    pub fn heartbeat(&self) -> u64 {
        self.heartbeat.load(Ordering::Relaxed)
    }

    /// Records activity now (informational, for `qadataswap ls`).
    pub fn touch(&self) {
        self.heartbeat.store(now_ns(), Ordering::Relaxed);
    }

    /// Takes a lease on `slot` if its commit word still reads `expected` (an even value).
    ///
    /// Returns `true` only when the lease covers exactly generation `expected`: until
    /// [`release`](Self::release), the writer will not rewrite the slot. Returns `false` (and
    /// holds nothing) if the slot changed, is being written, `expected` is odd, or `slot` is
    /// out of range: choose the slot again and retry.
    pub fn try_lease(&self, slot: usize, seq: &SeqWord<'_>, expected: u64) -> bool {
        let Some(count) = self.leases.get(slot) else {
            return false;
        };
        if expected % 2 == 1 {
            return false;
        }
        count.fetch_add(1, Ordering::Relaxed);
        // Store-then-load handshake with `claim_slot_for_write` (odd store, fence, lease loads).
        fence(Ordering::SeqCst);
        if seq.load() == expected {
            true
        } else {
            self.release(slot);
            false
        }
    }

    /// Gives back one lease on `slot` (Release: this reader's reads of the slot happen before
    /// the writer's next rewrite). Never goes below zero.
    pub fn release(&self, slot: usize) {
        if let Some(count) = self.leases.get(slot) {
            let _ = count.fetch_update(Ordering::Release, Ordering::Relaxed, |c| c.checked_sub(1));
        }
    }

    /// Passes the entry, leases included, from `from` to `to` (a `fork()` child taking over the entry its parent
    /// registered for it). Returns `false`, changing nothing, if `from` does not own it.
    ///
    /// The start time is cleared first, so that in between the entry reads as "pid only" (judged by whether the pid
    /// exists: both processes do) and never as a live pid with a foreign start time, which a reclaimer would take
    /// for a recycled pid.
    pub fn hand_over(&self, from: ProcessIdentity, to: ProcessIdentity) -> bool {
        if self.pid.load(Ordering::Acquire) != from.pid
            || self
                .start_time
                .compare_exchange(from.start_time, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        if self
            .pid
            .compare_exchange(from.pid, to.pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            self.start_time.store(from.start_time, Ordering::Release);
            return false;
        }
        self.start_time.store(to.start_time, Ordering::Release);
        self.touch();
        true
    }

    /// Drops every lease and frees the entry (pid = 0, last). Called by the owner on close.
    pub fn unregister(&self) {
        self.clear();
        self.start_time.store(0, Ordering::Relaxed);
        self.pid.store(0, Ordering::Release);
    }

    fn clear(&self) {
        for l in &self.leases {
            l.store(0, Ordering::Release);
        }
        self.cursor.store(0, Ordering::Relaxed);
        self.heartbeat.store(0, Ordering::Relaxed);
        self.pidns.store(0, Ordering::Relaxed);
        self.entry_flags.store(0, Ordering::Relaxed);
    }
}

/// Errors of the lease table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Every entry belongs to a live reader.
    #[error(
        "all {capacity} reader entries are taken by live readers: close a reader, or create \
         the segment with more reader entries"
    )]
    TableFull {
        /// Number of entries in the table.
        capacity: usize,
    },
    /// Readers still hold leases on the slot the writer wanted to reuse.
    #[error(
        "slot {slot} is still leased ({}): those readers must drop their batches first, or \
         the segment needs more slots",
        describe_holders(holders)
    )]
    SlotBusy {
        /// The slot.
        slot: usize,
        /// `(pid, lease count)` of every holder, as seen right after the check.
        holders: Vec<(u32, u32)>,
    },
    /// The slot index is not below `max`.
    #[error("slot {slot} is out of range (at most {max} slots): this is a bug in the caller")]
    SlotOutOfRange {
        /// The slot asked for.
        slot: usize,
        /// The number of lease counters per entry.
        max: usize,
    },
    /// Pid 0 cannot own an entry (0 marks a free entry).
    #[error("pid 0 cannot register as a reader: pass ProcessIdentity::current()")]
    InvalidPid,
}

fn describe_holders(holders: &[(u32, u32)]) -> String {
    if holders.is_empty() {
        return "released just after the check".to_owned();
    }
    let parts: Vec<String> = holders
        .iter()
        .map(|(pid, n)| {
            format!(
                "held by pid {pid} ({n} lease{})",
                if *n == 1 { "" } else { "s" }
            )
        })
        .collect();
    parts.join(", ")
}

/// Frees entry `e` of the dead `owner` under the entry's reclaim lock (stolen from a reclaimer that `is_alive`
/// judges dead); `None` if another reclaimer holds the lock or the entry changed hands meanwhile.
fn reclaim_entry(
    e: &ReaderEntry,
    reclaimer: u32,
    owner: ProcessIdentity,
    is_alive: impl Fn(ProcessIdentity) -> bool,
) -> Option<ProcessIdentity> {
    // Take the entry's reclaim lock, stealing it from a dead reclaimer.
    let holder = e.flags.load(Ordering::Acquire);
    if holder == reclaimer
        || (holder != 0
            && is_alive(ProcessIdentity {
                pid: holder,
                start_time: 0,
            }))
    {
        return None;
    }
    if e.flags
        .compare_exchange(holder, reclaimer, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return None;
    }
    // Under the lock: the entry must still be the dead owner's (not freed and taken again meanwhile). The owner is
    // dead and registrants wait for pid 0, so it stays so.
    let still = e.pid.load(Ordering::Acquire) == owner.pid
        && e.start_time.load(Ordering::Acquire) == owner.start_time;
    if still {
        e.clear();
        e.start_time.store(0, Ordering::Relaxed);
        e.pid.store(0, Ordering::Release);
    }
    e.flags.store(0, Ordering::Release);
    still.then_some(owner)
}

/// The reader table: a borrowed slice of entries (normally in shared memory).
/// `Send + Sync + Copy`.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTable<'a> {
    entries: &'a [ReaderEntry],
}

impl<'a> LeaseTable<'a> {
    /// Borrows a table.
    pub fn new(entries: &'a [ReaderEntry]) -> Self {
        LeaseTable { entries }
    }

    /// The entries (free or not).
    pub fn entries(&self) -> &'a [ReaderEntry] {
        self.entries
    }

    /// Claims a free entry for `me` and returns its index. If none is free, reclaims dead
    /// readers' entries first and retries.
    ///
    /// # Errors
    ///
    /// [`LeaseError::TableFull`] if every entry belongs to a live reader;
    /// [`LeaseError::InvalidPid`] for pid 0.
    pub fn register(&self, me: ProcessIdentity) -> Result<usize, LeaseError> {
        self.register_with(me, crate::process::pid_namespace(), 0, &[], |_| true)
    }

    /// [`register`](Self::register) recording the owner's PID namespace and entry flags, with the leases `leases`
    /// (`(slot, count)`) already held when the entry becomes visible (a `fork()` child takes over what it inherited
    /// this way). `still_maps` tells whether the owner of an inherited entry still maps the segment (see
    /// [`reclaim_dead_where`](Self::reclaim_dead_where)).
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register); [`LeaseError::SlotOutOfRange`] for a slot past [`MAX_SLOTS`].
    pub fn register_with(
        &self,
        me: ProcessIdentity,
        pidns: u64,
        flags: u64,
        leases: &[(usize, u32)],
        still_maps: impl Fn(&EntryOwner) -> bool,
    ) -> Result<usize, LeaseError> {
        if me.pid == 0 {
            return Err(LeaseError::InvalidPid);
        }
        if let Some(&(slot, _)) = leases.iter().find(|(s, _)| *s >= MAX_SLOTS) {
            return Err(LeaseError::SlotOutOfRange {
                slot,
                max: MAX_SLOTS,
            });
        }
        if let Some(i) = self.try_claim(me, pidns, flags, leases) {
            return Ok(i);
        }
        self.reclaim_dead_where(&still_maps);
        self.try_claim(me, pidns, flags, leases)
            .ok_or(LeaseError::TableFull {
                capacity: self.entries.len(),
            })
    }

    fn try_claim(
        &self,
        me: ProcessIdentity,
        pidns: u64,
        flags: u64,
        leases: &[(usize, u32)],
    ) -> Option<usize> {
        for (i, e) in self.entries.iter().enumerate() {
            if e.pid.load(Ordering::Relaxed) == 0
                && e.pid
                    .compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Normally zero already (freed entries are cleared before pid = 0).
                e.clear();
                e.touch();
                e.pidns.store(pidns, Ordering::Relaxed);
                e.entry_flags.store(flags, Ordering::Relaxed);
                for &(slot, n) in leases {
                    if let Some(count) = e.leases.get(slot) {
                        count.store(n, Ordering::Relaxed);
                    }
                }
                // Release: the namespace, flags and inherited leases are visible with the start time.
                e.start_time.store(me.start_time, Ordering::Release);
                return Some(i);
            }
        }
        None
    }

    /// Frees the entries of dead readers (see [`ProcessIdentity::is_alive`]) after zeroing
    /// their leases, and returns who they were. Safe to race with the writer, live readers,
    /// registrations and other reclaimers (a per-entry reclaim lock in `flags`, stealable
    /// from a dead reclaimer).
    ///
    /// An owner in another PID namespace, or any owner while this process cannot judge pids (see
    /// [`ProcessIdentity::liveness`]), is never reclaimed: its leases stay until it releases them itself.
    pub fn reclaim_dead(&self) -> Vec<ProcessIdentity> {
        self.reclaim_dead_where(|_| true)
    }

    /// [`reclaim_dead`](Self::reclaim_dead), also freeing the entries flagged [`ENTRY_INHERITED`] whose owner still
    /// runs but no longer maps the segment (`still_maps` returns `false` for it: the `fork()` child called
    /// `exec`, which keeps pid and start time but drops every mapping and every inherited frame).
    pub fn reclaim_dead_where(
        &self,
        still_maps: impl Fn(&EntryOwner) -> bool,
    ) -> Vec<ProcessIdentity> {
        let me = ProcessIdentity::current().pid;
        let mut reclaimed = Vec::new();
        for e in self.entries {
            let Some(owner) = e.owner() else { continue };
            let gone = match owner.identity.liveness(owner.pidns) {
                Liveness::Dead => true,
                Liveness::Unknown => false,
                Liveness::Alive => owner.flags & ENTRY_INHERITED != 0 && !still_maps(&owner),
            };
            if !gone {
                continue;
            }
            if let Some(id) =
                reclaim_entry(e, me, owner.identity, |id| id.liveness(0).may_be_alive())
            {
                reclaimed.push(id);
            }
        }
        reclaimed
    }

    /// [`reclaim_dead`](Self::reclaim_dead) with the reclaimer's pid and the liveness test
    /// given explicitly (for models and tests). `is_alive` is also asked about the holder of
    /// an entry's reclaim lock, with `start_time` 0.
    pub fn reclaim_dead_by(
        &self,
        reclaimer: u32,
        is_alive: impl Fn(ProcessIdentity) -> bool,
    ) -> Vec<ProcessIdentity> {
        let mut reclaimed = Vec::new();
        for e in self.entries {
            let pid = e.pid.load(Ordering::Acquire);
            if pid == 0 {
                continue;
            }
            let start_time = e.start_time.load(Ordering::Acquire);
            let owner = ProcessIdentity { pid, start_time };
            if is_alive(owner) {
                continue;
            }
            if let Some(id) = reclaim_entry(e, reclaimer, owner, &is_alive) {
                reclaimed.push(id);
            }
        }
        reclaimed
    }

    /// Sum of the lease counts on `slot` over all entries.
    pub fn leases_on(&self, slot: usize) -> u32 {
        self.entries
            .iter()
            .fold(0u32, |sum, e| sum.saturating_add(e.lease_count(slot)))
    }

    /// `(pid, count)` of every entry holding leases on `slot`.
    pub fn holders(&self, slot: usize) -> Vec<(u32, u32)> {
        self.entries
            .iter()
            .filter_map(|e| {
                let n = e.lease_count(slot);
                (n > 0).then(|| (e.pid(), n))
            })
            .collect()
    }

    /// Registered entries (owner alive or not), with their index. Cheap: no `/proc` access.
    pub fn registered_entries(&self) -> impl Iterator<Item = (usize, &'a ReaderEntry)> + 'a {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.pid() != 0)
    }

    /// Registered entries whose owner is alive (reads `/proc` once per registered entry).
    pub fn live_entries(&self) -> impl Iterator<Item = (usize, &'a ReaderEntry)> + 'a {
        self.registered_entries().filter(|(_, e)| {
            e.owner()
                .is_some_and(|o| o.identity.liveness(o.pidns).may_be_alive())
        })
    }

    /// Writer side of the lease handshake: marks `slot` as being written (`seq` = `odd`), then
    /// checks that no reader holds a lease on it. On `Ok` the writer owns the slot until it
    /// commits a new even value (or aborts). On `SlotBusy` the word is back at `previous`.
    ///
    /// # Errors
    ///
    /// [`LeaseError::SlotBusy`] with the holders, [`LeaseError::SlotOutOfRange`].
    pub fn claim_slot_for_write(
        &self,
        slot: usize,
        seq: &SeqWord<'_>,
        previous: u64,
        odd: u64,
    ) -> Result<(), LeaseError> {
        if slot >= MAX_SLOTS {
            return Err(LeaseError::SlotOutOfRange {
                slot,
                max: MAX_SLOTS,
            });
        }
        seq.begin_write(odd);
        // begin_write ends with fence(SeqCst); this one keeps the handshake explicit here.
        fence(Ordering::SeqCst);
        if self.leases_on(slot) > 0 {
            seq.abort(previous);
            return Err(LeaseError::SlotBusy {
                slot,
                holders: self.holders(slot),
            });
        }
        Ok(())
    }
}

#[cfg(all(test, not(qadataswap_loom)))]
mod tests {
    use super::*;

    fn table<const N: usize>() -> [ReaderEntry; N] {
        [const { ReaderEntry::new() }; N]
    }

    #[test]
    fn registering_takes_free_entries_then_reports_a_full_table() {
        let entries = table::<2>();
        let t = LeaseTable::new(&entries);
        let me = ProcessIdentity::current();
        assert_eq!(t.register(me), Ok(0));
        assert_eq!(t.register(me), Ok(1));
        let err = t.register(me).unwrap_err();
        assert_eq!(err, LeaseError::TableFull { capacity: 2 });
        assert!(err.to_string().contains("close a reader"));
    }

    #[test]
    fn lease_on_the_expected_generation_blocks_the_writer_until_released() {
        let entries = table::<2>();
        let t = LeaseTable::new(&entries);
        let i = t.register(ProcessIdentity::current()).unwrap();
        let word = AtomicU64::new(4);
        let seq = SeqWord::new(&word);
        assert!(entries[i].try_lease(1, &seq, 4));
        assert!(
            !entries[i].try_lease(1, &seq, 2),
            "stale generation is refused"
        );
        assert_eq!(t.leases_on(1), 1);
        let err = t.claim_slot_for_write(1, &seq, 4, 5).unwrap_err();
        match &err {
            LeaseError::SlotBusy { slot: 1, holders } => {
                assert_eq!(holders, &vec![(std::process::id(), 1)])
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("held by pid"));
        assert_eq!(
            seq.load(),
            4,
            "an aborted claim does not advance the generation"
        );
        entries[i].release(1);
        entries[i].release(1); // extra release does not underflow
        assert_eq!(t.leases_on(1), 0);
        t.claim_slot_for_write(1, &seq, 4, 5).unwrap();
        assert!(
            !entries[i].try_lease(1, &seq, 4),
            "a slot being written is refused"
        );
        seq.commit(6);
        assert!(entries[i].try_lease(1, &seq, 6));
    }

    #[test]
    fn out_of_range_slots_are_refused_without_panicking() {
        let entries = table::<1>();
        let t = LeaseTable::new(&entries);
        let word = AtomicU64::new(0);
        let seq = SeqWord::new(&word);
        assert!(!entries[0].try_lease(MAX_SLOTS, &seq, 0));
        assert_eq!(entries[0].lease_count(MAX_SLOTS), 0);
        assert!(matches!(
            t.claim_slot_for_write(MAX_SLOTS, &seq, 0, 1),
            Err(LeaseError::SlotOutOfRange { .. })
        ));
    }

    #[test]
    fn entry_of_a_recycled_pid_is_reclaimed_and_the_live_one_kept() {
        let entries = table::<3>();
        let t = LeaseTable::new(&entries);
        let me = ProcessIdentity::current();
        let recycled = ProcessIdentity {
            pid: me.pid,
            start_time: me.start_time.wrapping_sub(1).max(1),
        };
        assert!(!recycled.is_alive());
        let live = t.register(me).unwrap();
        let dead = t.register(recycled).unwrap();
        let word = AtomicU64::new(0);
        let seq = SeqWord::new(&word);
        assert!(entries[dead].try_lease(0, &seq, 0));
        assert!(entries[live].try_lease(0, &seq, 0));
        assert_eq!(t.reclaim_dead(), vec![recycled]);
        assert_eq!(entries[dead].pid(), 0);
        assert_eq!(t.leases_on(0), 1, "the live reader's lease stays");
        assert_eq!(
            t.live_entries().map(|(i, _)| i).collect::<Vec<_>>(),
            vec![live]
        );
        entries[live].unregister();
        assert_eq!(t.registered_entries().count(), 0);
    }
}
