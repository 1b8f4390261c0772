//! System tests live in this crate's test targets; see `Cargo.toml`.
