//! Heap allocations per `write()` and per `read()` of a small frame, counted by a counting global allocator: the
//! hot path's allocation budget (issue 21). Not a timing test: counts are exact and do not depend on the machine.
//! Each bound is today's count with a little room; a change that allocates more per frame fails here and says by
//! how much (`cargo xtask bench`'s e2e-profile shows where the instructions go).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter};

struct Counting;

thread_local! {
    /// Allocations made by this thread (other test threads do not disturb the count).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a thread-local Cell that
// itself never allocates (const-initialised).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: `ptr` came from this allocator with `layout`; the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

fn frame(rows: usize) -> RecordBatch {
    let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let f: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|v| v as f64)));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|v| format!("SYM{v:05}")),
    ));
    RecordBatch::try_from_iter([("i64", i), ("f64", f), ("utf8", s)]).expect("valid batch")
}

/// Average allocations per call of `f` over `n` calls, after a warm-up (caches filled).
fn per_call(n: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..10 {
        f();
    }
    let before = allocations();
    for _ in 0..n {
        f();
    }
    (allocations() - before) as f64 / n as f64
}

/// (allocations per write(), per read()) of a `rows`-row frame.
fn counts(rows: usize) -> (f64, f64) {
    let name = format!("qads-alloc-{}-{rows}", std::process::id());
    let batch = frame(rows);
    let mut w = SnapshotWriter::builder(&name)
        .size(1 << 20)
        .create()
        .expect("create");
    let r = SnapshotReader::builder(&name).open().expect("open");
    w.write(&batch).expect("first write");
    let write = per_call(200, || {
        w.write(&batch).expect("write");
    });
    let read = per_call(200, || {
        let f = r.read().expect("read");
        assert_eq!(f.batches()[0].num_rows(), rows);
    });
    drop(r);
    w.close().expect("close");
    (write, read)
}

#[test]
fn a_small_frame_costs_a_bounded_number_of_allocations_to_write_and_to_read_whatever_its_rows() {
    let mut seen = Vec::new();
    for rows in [1, 100, 1000] {
        let (write, read) = counts(rows);
        println!(
            "allocations per call, 3 columns x {rows} rows: write() {write:.1}, read() {read:.1}"
        );
        assert!(
            write <= WRITE_BOUND,
            "write() of {rows} rows allocates {write:.1} times per frame, over its budget of {WRITE_BOUND}"
        );
        assert!(
            read <= READ_BOUND,
            "read() of {rows} rows allocates {read:.1} times per frame, over its budget of {READ_BOUND}"
        );
        seen.push((write, read));
    }
    // O(columns): the count does not grow with the rows.
    assert!(
        seen.windows(2).all(|p| p[0] == p[1]),
        "allocations per frame changed with the row count: {seen:?}"
    );
}

/// Budgets: the counts of 2026-12 (13 per write(), 19 per read(), 3 columns) with a little room.
const WRITE_BOUND: f64 = 16.0;
const READ_BOUND: f64 = 24.0;
