//! The `qadataswap` binary: everything is in the library (`qadataswap_cli::main_with`), which the Python package
//! also runs as `python -m qadataswap` and its `qadataswap` console script.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(qadataswap_cli::main_with(std::env::args_os(), None))
}
