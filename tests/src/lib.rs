//! System tests live in this crate's test targets (see `Cargo.toml`); the
//! fault drills live here, shared by the short run in `tests/drills.rs` and
//! the long one in `benches/drills.rs`.

pub mod drills;
pub mod tree;
