//! The inbox through its real gRPC API, with the real command service, NATS
//! and PostgreSQL: one test binary, each test on its own stream and database.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod access;
mod account;
mod authorization;
mod consent;
mod projection;
mod rebuild;
mod support;
mod views;
mod watch;
