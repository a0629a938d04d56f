//! qadataswap-polars: the Polars adapter (its issue is open).
