//! The command service through its real gRPC API, on the real NATS: one
//! test binary, each test on its own stream.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod authorization;
mod claims;
mod identity;
mod leavers;
mod reliability;
mod scenario;
mod staff_roles;
mod support;
mod tls;
