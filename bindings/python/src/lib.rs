//! The native half of the `qadataswap` Python package (`qadataswap._native`).
//!
//! It binds the Rust core (`qadataswap-arrow`) and moves Arrow data through the PyCapsule interface, so it needs no
//! Polars or pyarrow crate: the Python half (`python/qadataswap/__init__.py`) turns frames into `polars.DataFrame`
//! (or pyarrow tables) through `__arrow_c_stream__`, zero-copy, and wraps everything into the seed's API.
//!
//! ```python
//! from qadataswap import SharedDataFrame
//! writer = SharedDataFrame.create_writer("mydata", size_mb=100)
//! writer.write(df)
//! reader = SharedDataFrame.create_reader("mydata")
//! df = reader.read()
//! ```
//!
//! Blocking calls release the GIL and wait in slices of at most 50 ms, checking for signals in between, so Ctrl-C
//! interrupts them promptly.
// The public structs here are handles behind an FFI boundary (C pointers, Python classes), not Rust API.
#![allow(missing_debug_implementations)]

mod boundary;
mod capsule;
mod conform;
mod error;
mod frame;
mod snapshot;
mod stream;

use pyo3::prelude::*;

/// The `qadataswap` command-line tool (`python -m qadataswap ...`, the `qadataswap` console script): runs it with
/// `argv` (program name first) and returns its exit code. `self_command` is how to start the tool again (its
/// `bench` starts a peer). The GIL is released while it runs; the tool catches its own panics.
#[pyfunction]
fn cli_main(
    py: Python<'_>,
    argv: Vec<std::ffi::OsString>,
    self_command: Vec<std::ffi::OsString>,
) -> PyResult<u8> {
    // The tool catches its own panics; the boundary is there for whatever runs around it, as on every entry.
    boundary::guarded(py, || {
        Ok(py.detach(|| qadataswap_cli::main_with(argv, Some(self_command))))
    })
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<snapshot::PyWriter>()?;
    m.add_class::<snapshot::PyReader>()?;
    m.add_class::<snapshot::PyCancel>()?;
    m.add_class::<stream::PyStreamWriter>()?;
    m.add_class::<stream::PyStreamReader>()?;
    m.add_class::<frame::PyFrame>()?;
    m.add_class::<frame::PyBatch>()?;
    m.add_class::<frame::PySchema>()?;
    m.add_function(wrap_pyfunction!(snapshot::unlink, m)?)?;
    m.add_function(wrap_pyfunction!(boundary::panic_on_next_call, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
