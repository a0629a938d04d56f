//! Turning Rust errors into the Python classes of `qadataswap._errors`, keeping the core's messages and fields.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use pyo3::IntoPyObjectExt;
use qadataswap_arrow::Error;
use qadataswap_shm::ShmError;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Raise `class` (a name in `qadataswap._errors`) with `message` and the given attributes.
pub fn raise(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module =
            ERRORS.get_or_try_init(py, || py.import("qadataswap._errors").map(Bound::unbind))?;
        let exc = module.bind(py).getattr(class)?.call1((message.clone(),))?;
        for (k, v) in attrs {
            exc.setattr(*k, v.bind(py))?;
        }
        Ok(PyErr::from_value(exc))
    };
    // If even the error module cannot be loaded, fall back to a RuntimeError with the same message.
    build().unwrap_or_else(|e| e)
}

fn attr<'py, T: IntoPyObjectExt<'py>>(py: Python<'py>, v: T) -> Py<PyAny> {
    v.into_py_any(py).unwrap_or_else(|_| py.None())
}

/// The Python exception for a core error.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    let name_attr = |n: &str| ("name", attr(py, n.to_owned()));
    match &e {
        Error::Shm(s) => shm_to_py(py, s, msg),
        Error::Timeout { name, waited, .. } => raise(
            py,
            "TimeoutError",
            msg,
            &[name_attr(name), ("waited", attr(py, waited.as_secs_f64()))],
        ),
        Error::WriterAlive { name, pid } => raise(
            py,
            "WriterAliveError",
            msg,
            &[name_attr(name), ("pid", attr(py, *pid))],
        ),
        Error::NotCreated { name, waited } => raise(
            py,
            "SegmentNotFoundError",
            msg,
            &[name_attr(name), ("waited", attr(py, waited.as_secs_f64()))],
        ),
        Error::WriterUnjudgeable { name, pid } => raise(
            py,
            "WriterAliveError",
            msg,
            &[name_attr(name), ("pid", attr(py, *pid))],
        ),
        Error::InUse { name, pids, .. } => raise(
            py,
            "SegmentInUseError",
            msg,
            &[name_attr(name), ("pids", attr(py, pids.clone()))],
        ),
        Error::DeadButRegistered { name, pids, .. } => raise(
            py,
            "SegmentInUseError",
            msg,
            &[name_attr(name), ("pids", attr(py, pids.clone()))],
        ),
        Error::NotOurs { name, .. } | Error::Unverifiable { name, .. } => {
            raise(py, "NotOursError", msg, &[name_attr(name)])
        }
        Error::WriterClosed { name } => raise(py, "WriterClosedError", msg, &[name_attr(name)]),
        Error::WriterDied { name, pid } => raise(
            py,
            "WriterDiedError",
            msg,
            &[name_attr(name), ("pid", attr(py, *pid))],
        ),
        Error::SlotTooSmall {
            name,
            needed,
            capacity,
        } => raise(
            py,
            "SlotTooSmallError",
            msg,
            &[
                name_attr(name),
                ("needed", attr(py, *needed)),
                ("capacity", attr(py, *capacity)),
            ],
        ),
        Error::SchemaTooLarge {
            name,
            needed,
            capacity,
        } => raise(
            py,
            "SchemaTooLargeError",
            msg,
            &[
                name_attr(name),
                ("needed", attr(py, *needed)),
                ("capacity", attr(py, *capacity)),
            ],
        ),
        Error::AllSlotsLeased { name, .. } => {
            raise(py, "AllSlotsLeasedError", msg, &[name_attr(name)])
        }
        Error::TooManyReaders { name, capacity } => raise(
            py,
            "TooManyReadersError",
            msg,
            &[name_attr(name), ("capacity", attr(py, *capacity))],
        ),
        Error::Forked {
            name,
            owner_pid,
            pid,
            ..
        } => raise(
            py,
            "ForkedError",
            msg,
            &[
                name_attr(name),
                ("owner_pid", attr(py, *owner_pid)),
                ("pid", attr(py, *pid)),
            ],
        ),
        Error::WrongMode { name, .. } => raise(py, "WrongModeError", msg, &[name_attr(name)]),
        Error::VersionMismatch { name, .. } => {
            raise(py, "VersionMismatchError", msg, &[name_attr(name)])
        }
        Error::Foreign { name } => raise(py, "ForeignSegmentError", msg, &[name_attr(name)]),
        Error::NotInitialised { name, .. } => {
            raise(py, "NotInitialisedError", msg, &[name_attr(name)])
        }
        Error::CorruptHeader { name, .. }
        | Error::CorruptFrame { name, .. }
        | Error::Protocol { name, .. } => raise(py, "CorruptSegmentError", msg, &[name_attr(name)]),
        Error::InvalidConfig { .. } | Error::Config(_) => raise(py, "InvalidConfigError", msg, &[]),
        Error::InvalidFrame { .. } => raise(py, "InvalidFrameError", msg, &[]),
        Error::Arrow(_) => raise(py, "ArrowError", msg, &[]),
        _ => raise(py, "Error", msg, &[]),
    }
}

fn shm_to_py(py: Python<'_>, e: &ShmError, msg: String) -> PyErr {
    let class = match e {
        ShmError::NotFound { .. } => "SegmentNotFoundError",
        ShmError::AlreadyExists { .. } => "SegmentExistsError",
        ShmError::PermissionDenied { .. }
        | ShmError::ForeignOwner { .. }
        | ShmError::InsecureMode { .. } => "PermissionError",
        ShmError::NotARegularFile { .. } => "NotARegularFileError",
        ShmError::TooLarge { .. } => "SegmentTooLargeError",
        ShmError::InvalidName { .. } => "InvalidNameError",
        _ => "Error",
    };
    raise(py, class, msg, &[])
}

/// An Arrow error met in the binding itself (importing or exporting through the C interfaces).
pub fn arrow_to_py(py: Python<'_>, e: arrow_schema::ArrowError) -> PyErr {
    raise(py, "ArrowError", format!("arrow: {e}"), &[])
}

/// The Python exception for a frame Polars cannot be given (`qadataswap_polars::guard`).
pub fn guard_to_py(py: Python<'_>, e: qadataswap_polars::guard::GuardError) -> PyErr {
    use qadataswap_polars::guard::GuardError;
    let msg = e.to_string();
    match &e {
        GuardError::UnsupportedType {
            column, data_type, ..
        } => raise(
            py,
            "UnsupportedTypeError",
            msg,
            &[
                ("column", attr(py, column.clone())),
                ("data_type", attr(py, data_type.clone())),
            ],
        ),
        _ => raise(py, "ArrowError", msg, &[]),
    }
}
