//! A role that one process at a time may hold (a segment's writer), in one 64-bit word, so that taking it over from
//! a dead holder is a single compare-and-swap: there is no moment at which a live holder's claim is half written
//! and could be mistaken for a dead one.
//!
//! The word packs who holds the role:
//!
//! | bits | field | meaning |
//! |---|---|---|
//! | 63..42 | pid | the holder's pid (Linux pids are below 2^22) |
//! | 41..32 | ns tag | the low 10 bits of the holder's PID-namespace inode, `0` if unknown |
//! | 31..0 | start | the low 32 bits of the holder's start time (`/proc/<pid>/stat` field 22) |
//!
//! `0` means nobody holds the role. A claimer judges the current holder from the word alone (see
//! [`OwnerWord::try_take`]); a holder of another PID namespace is never judged dead (its pid means nothing here).
//!
//! ```
//! use std::sync::atomic::AtomicU64;
//! use qadataswap_sync::owner::{OwnerWord, Taken};
//! use qadataswap_sync::process::ProcessIdentity;
//!
//! let word = AtomicU64::new(0);
//! let role = OwnerWord::new(&word);
//! let me = ProcessIdentity::current();
//! assert_eq!(role.try_take(me, qadataswap_sync::process::pid_namespace()), Ok(Taken::Fresh));
//! assert!(role.holder().unwrap().is(me));
//! assert!(role.release(me));
//! ```

use crate::primitive::{AtomicU64, Ordering};
use crate::process::{pid_namespace, proc_is_own_namespace, Liveness, ProcessIdentity};

/// Pids are below 2^22 on Linux (`PID_MAX_LIMIT`).
const PID_BITS: u32 = 22;
const TAG_BITS: u32 = 10;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// The 10-bit tag of a PID-namespace inode (0 for "unknown"). Namespace inodes are handed out consecutively, so the
/// low bits tell the live namespaces of one machine apart.
pub fn ns_tag(pidns: u64) -> u64 {
    if pidns == 0 {
        0
    } else {
        // Never 0 for a known namespace: 0 means "unknown".
        (pidns & TAG_MASK).max(1)
    }
}

/// Who holds a role, as packed in its word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The holder's pid (in its own PID namespace).
    pub pid: u32,
    /// [`ns_tag`] of the holder's PID namespace (0: unknown).
    pub ns_tag: u64,
    /// The low 32 bits of its start time.
    pub start_low: u32,
}

impl Holder {
    /// The packed word of `who` in namespace `pidns`; `None` for a pid that does not fit (no Linux pid).
    pub fn of(who: ProcessIdentity, pidns: u64) -> Option<Holder> {
        if who.pid == 0 || who.pid >= (1 << PID_BITS) {
            return None;
        }
        Some(Holder {
            pid: who.pid,
            ns_tag: ns_tag(pidns),
            start_low: who.start_time as u32,
        })
    }

    /// The word's value.
    pub fn pack(self) -> u64 {
        (u64::from(self.pid) << (64 - PID_BITS)) | (self.ns_tag << 32) | u64::from(self.start_low)
    }

    /// The holder a word names, `None` for 0.
    pub fn unpack(word: u64) -> Option<Holder> {
        if word == 0 {
            return None;
        }
        Some(Holder {
            pid: (word >> (64 - PID_BITS)) as u32,
            ns_tag: (word >> 32) & TAG_MASK,
            start_low: word as u32,
        })
    }

    /// Whether this is `who` (same pid and start time).
    pub fn is(&self, who: ProcessIdentity) -> bool {
        self.pid == who.pid && self.start_low == who.start_time as u32
    }

    /// What this process can tell about the holder: [`Liveness::Unknown`] when it lives in another PID namespace
    /// (or when this process cannot judge pids at all), otherwise whether a process with its pid and start time
    /// runs. A holder that recorded no start time (low bits 0) is judged by its pid alone.
    pub fn liveness(&self) -> Liveness {
        let mine = ns_tag(pid_namespace());
        if self.ns_tag != 0 && mine != 0 && self.ns_tag != mine {
            return Liveness::Unknown;
        }
        if self.is(ProcessIdentity::current()) {
            return Liveness::Alive;
        }
        if !proc_is_own_namespace() {
            return Liveness::Unknown;
        }
        match ProcessIdentity::of(self.pid) {
            None => Liveness::Dead,
            Some(now) if now.start_time == 0 || self.start_low == 0 => Liveness::Alive,
            Some(now) if now.start_time as u32 == self.start_low => Liveness::Alive,
            Some(_) => Liveness::Dead,
        }
    }
}

/// How [`OwnerWord::try_take`] got the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Nobody held it.
    Fresh,
    /// Its holder was dead: taken over from them.
    FromDead(Holder),
}

/// Why [`OwnerWord::try_take`] did not get the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A live holder, or one whose liveness cannot be judged from here ([`Liveness::Unknown`]).
    Held(Holder, Liveness),
    /// The caller's pid does not fit a Linux pid (never happens for a real process).
    InvalidPid,
}

/// A role word in (normally shared) memory. `Copy`; borrows the word.
#[derive(Clone, Copy, Debug)]
pub struct OwnerWord<'a> {
    word: &'a AtomicU64,
}

impl<'a> OwnerWord<'a> {
    /// Borrows a role word.
    pub fn new(word: &'a AtomicU64) -> Self {
        OwnerWord { word }
    }

    /// The current holder, `None` if nobody holds the role.
    pub fn holder(&self) -> Option<Holder> {
        Holder::unpack(self.word.load(Ordering::Acquire))
    }

    /// Takes the role for `me` (in PID namespace `pidns`) if nobody holds it or its holder is dead, judging with
    /// [`Holder::liveness`].
    ///
    /// # Errors
    /// [`Refused::Held`] if a process that is (or may be) alive holds it, `me` included.
    pub fn try_take(&self, me: ProcessIdentity, pidns: u64) -> Result<Taken, Refused> {
        self.try_take_judged(me, pidns, |h| h.liveness())
    }

    /// [`try_take`](Self::try_take) with the judgement of a holder given explicitly (for models and tests).
    ///
    /// A single compare-and-swap replaces exactly the word that was judged, so a holder is only ever displaced
    /// when it was judged dead, and two claimers racing for a dead holder's role cannot both win.
    ///
    /// # Errors
    /// As [`try_take`](Self::try_take).
    pub fn try_take_judged(
        &self,
        me: ProcessIdentity,
        pidns: u64,
        judge: impl Fn(&Holder) -> Liveness,
    ) -> Result<Taken, Refused> {
        let mine = Holder::of(me, pidns).ok_or(Refused::InvalidPid)?.pack();
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let taken = match Holder::unpack(current) {
                None => Taken::Fresh,
                Some(h) if current == mine => return Err(Refused::Held(h, Liveness::Alive)),
                Some(h) => match judge(&h) {
                    Liveness::Dead => Taken::FromDead(h),
                    other => return Err(Refused::Held(h, other)),
                },
            };
            match self
                .word
                .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(taken),
                Err(now) => current = now,
            }
        }
    }

    /// Give a role taken from `previous` back (a compare-and-swap from `mine`), for a claimer that learns it took
    /// the role of a segment it must not use. `false` when the word no longer holds `mine`.
    pub fn give_back(&self, mine: Holder, previous: u64) -> bool {
        self.word
            .compare_exchange(mine.pack(), previous, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives the role up if `me` holds it; returns whether it did.
    pub fn release(&self, me: ProcessIdentity) -> bool {
        let Some(h) = self.holder() else {
            return false;
        };
        if !h.is(me) {
            return false;
        }
        self.word
            .compare_exchange(h.pack(), 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(all(test, not(qadataswap_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64 as StdAtomicU64;

    fn id(pid: u32, start_time: u64) -> ProcessIdentity {
        ProcessIdentity { pid, start_time }
    }

    #[test]
    fn a_holder_packs_and_unpacks_to_itself() {
        let h = Holder::of(id(4_194_303, 0x1_2345_6789), 4_026_532_000).unwrap();
        assert_eq!(Holder::unpack(h.pack()), Some(h));
        assert_eq!(h.start_low, 0x2345_6789);
        assert_ne!(h.ns_tag, 0);
        assert_eq!(Holder::unpack(0), None);
        assert_eq!(Holder::of(id(1 << 22, 1), 0), None, "not a Linux pid");
        assert_eq!(Holder::of(id(0, 1), 0), None);
    }

    #[test]
    fn a_live_holder_is_never_displaced_and_a_dead_one_is_taken_once() {
        let word = StdAtomicU64::new(0);
        let role = OwnerWord::new(&word);
        let alive = |h: &Holder| {
            if h.pid == 10 {
                Liveness::Alive
            } else {
                Liveness::Dead
            }
        };
        assert_eq!(role.try_take_judged(id(10, 1), 0, alive), Ok(Taken::Fresh));
        assert!(matches!(
            role.try_take_judged(id(11, 1), 0, alive),
            Err(Refused::Held(Holder { pid: 10, .. }, Liveness::Alive))
        ));
        // The holder dies: one claimer takes over, the next sees the new (live) holder.
        let dead = |h: &Holder| {
            if h.pid == 10 {
                Liveness::Dead
            } else {
                Liveness::Alive
            }
        };
        assert!(matches!(
            role.try_take_judged(id(11, 1), 0, dead),
            Ok(Taken::FromDead(Holder { pid: 10, .. }))
        ));
        assert!(role.try_take_judged(id(12, 1), 0, dead).is_err());
        assert!(role.holder().unwrap().is(id(11, 1)));
    }

    #[test]
    fn a_holder_of_unknown_liveness_is_never_displaced() {
        let word = StdAtomicU64::new(Holder::of(id(5, 5), 7).unwrap().pack());
        let role = OwnerWord::new(&word);
        assert!(matches!(
            role.try_take_judged(id(6, 6), 8, |_| Liveness::Unknown),
            Err(Refused::Held(_, Liveness::Unknown))
        ));
    }

    #[test]
    fn a_holder_in_another_pid_namespace_cannot_be_judged_from_here() {
        let mine = pid_namespace();
        if mine == 0 {
            return; // no /proc/self/ns/pid here: nothing to tell apart
        }
        let other_ns = mine ^ 2;
        let h = Holder::of(id(1, 1), other_ns).unwrap();
        assert_eq!(h.liveness(), Liveness::Unknown);
    }

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_dead() {
        let me = ProcessIdentity::current();
        let ns = pid_namespace();
        assert_eq!(Holder::of(me, ns).unwrap().liveness(), Liveness::Alive);
        let recycled = id(me.pid, me.start_time + 1);
        assert_eq!(Holder::of(recycled, ns).unwrap().liveness(), Liveness::Dead);
    }

    #[test]
    fn release_only_gives_up_ones_own_role() {
        let word = StdAtomicU64::new(0);
        let role = OwnerWord::new(&word);
        role.try_take_judged(id(3, 3), 0, |_| Liveness::Dead)
            .unwrap();
        assert!(!role.release(id(4, 4)));
        assert!(role.release(id(3, 3)));
        assert_eq!(role.holder(), None);
    }
}
