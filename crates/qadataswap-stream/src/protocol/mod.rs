//! The stream protocol (docs/FORMAT.md §11): every chunk to every reader, in order, with back-pressure. The
//! low-level halves of [`crate::SharedDataStream`], each in its own file; the ring's rules they follow are
//! `qadataswap_sync::ring`'s:
//! - [`StreamWriterCore`] writes chunk `k` (numbered from 1) into slot `(k - 1) % slot_count`, but only once every
//!   registered reader's `cursor` is past chunk `k - slot_count` and nobody holds a lease on that slot; then it
//!   publishes `stream_head = k`. While waiting it parks on the release notifier, and reclaims the entries of dead
//!   readers so that they stop holding it back.
//! - [`StreamReaderCore`] leases chunk `cursor` when `cursor <= stream_head`, decodes it zero-copy like a snapshot
//!   frame, and advances its `cursor`.
//!
//! - [`StreamFollower`] watches a stream without ever holding the writer back (for viewers such as
//!   `qadataswap cat --follow`): it registers an entry (it needs one to take leases) but keeps its cursor at
//!   [`CURSOR_DETACHED`], so the writer's back-pressure ignores it. It leases a chunk only if the slot's commit word
//!   still says that chunk, copies it out and releases the lease at once; chunks the writer overwrote before the
//!   follower got to them are reported as [`FollowEvent::Skipped`], and the follower jumps to the oldest retained.
//!
//! Wake-ups with hysteresis: a parked writer is not woken for every slot a reader frees (that costs a futex wake,
//! a context switch and a re-park per chunk when the ring is full). A reader wakes it once, as far as that reader
//! is concerned, the next `max(1, slot_count / 2)` chunks can be written (cursor far enough ahead, no lease on
//! their slots), or at once while any reader sleeps for chunks. So that nobody waits on a writer left asleep on
//! purpose, a reader (or follower) about to wait for chunks wakes a parked writer first; and the writer's wait
//! slices (10 ms) bound how long it sleeps on a slot that came free while no reader needed chunks.
//!
//! Both sides report the situations a stream has and a snapshot has not as plain data ([`ChunkWrite::Blocked`],
//! [`Poll`], [`FollowEvent`]); the stream crate turns them into its own errors.
//!
//! ```no_run
//! use std::time::Duration;
//! use qadataswap_stream::protocol::{FollowEvent, StartAt, StreamFollower};
//! use qadataswap_arrow::ReaderOptions;
//!
//! let mut f = StreamFollower::open("ticks", &ReaderOptions::default(), StartAt::Newest)?;
//! loop {
//!     match f.next(Some(Duration::from_secs(5)))? {
//!         FollowEvent::Chunk(c) => println!("chunk {}: {} rows", c.seq(), c.num_rows()),
//!         FollowEvent::Skipped { from, to } => println!("fell behind: chunks {from}..={to} are gone"),
//!         FollowEvent::End => break,
//!         _ => {}
//!     }
//! }
//! # Ok::<(), qadataswap_arrow::Error>(())
//! ```

mod common;
pub mod follower;
pub mod reader;
pub mod writer;

pub use follower::{FollowEvent, StreamFollower};
pub use qadataswap_sync::ring::{StartAt, CURSOR_DETACHED};
pub use reader::{Poll, StreamReaderCore};
pub use writer::{ChunkWrite, Laggard, StreamWriterCore};
