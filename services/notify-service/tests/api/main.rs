//! Notifications through the real services: the command service, NATS,
//! PostgreSQL, and a real SMTP server on loopback (aiosmtpd) whose received
//! mail the tests read raw.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod delivery;
mod restart;
mod startup;
mod support;
mod switch;
mod verification;
