//! qadataswap-stream (see the crate description).
