//! Cross-process handoff benchmark: two processes ping-pong a counter over a shared mapping
//! and we report one-way latency (round trip / 2), median and p99.
//!
//! ```text
//! cargo run --release -p qadataswap-sync --example handoff -- [--round-trips N] [--json]
//! ```
//!
//! Variants: `spin` (busy-wait on the atomic), `notifier` (our spin-then-park waiter with the
//! default budget), `notifier-park` (spin budget 0: always park), `futex` (a raw futex
//! ping-pong that always wakes), `pipe` (one byte each way over two pipes).
//! Each round trip is timed with `Instant::now()` around it (~20 ns of the total). The machine
//! is shared, so each variant runs `--repeat K` times (default 3, variants interleaved) and the
//! statistics are over all runs' samples pooled. Futex-based variants are bimodal: when the
//! partner replies before the waiter is asleep, `FUTEX_WAIT` returns `EAGAIN` at once and a
//! round trip costs a few hundred ns instead of a full sleep/wake-up.
//!
//! So the target "a parked reader costs at most 1.2x a raw futex" is judged by a second part,
//! wake-up of a sleeping receiver: the sender sleeps 300 µs (far past any spin budget, so the
//! receiver is asleep in the kernel), stamps CLOCK_MONOTONIC into the mapping and publishes; the
//! receiver reads the clock as soon as it runs. Each sample is one publish -> running latency,
//! measured the same way for the Notifier (spin 0 and default spin) and a raw futex wait/wake.

#[cfg(not(qadataswap_loom))]
#[path = "handoff/bench.rs"]
mod bench;

fn main() {
    #[cfg(not(qadataswap_loom))]
    bench::main();
}
