//! The audit trail through its real gRPC API, with the real command and
//! inbox services, NATS and PostgreSQL; each test on its own stream and
//! database.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod bad_events;
mod export;
mod integrity;
mod staff_roles;
mod stalled_export;
mod support;
mod switch;
mod trail;
