//! Careline notifications: when a message is posted, everyone on the thread
//! but its author is told by email that there is a new message, from whom,
//! with a link to sign in. No subject or message text is ever emailed.
//!
//! * `projection.rs` — [`NotifyProjection`]: people and their addresses,
//!   consents, participants, and one notification per message per
//!   recipient (undeliverable, with the reason, without a verified email).
//! * `delivery.rs` — the SMTP worker: retries with backoff, permanent
//!   failures with the reason, deterministic Message-IDs. Delivery state is
//!   kept outside the projection, so a rebuild sends nothing again.
//! * `mailer.rs` — SMTP connections kept open, with TCP_NODELAY.
//! * `grpc.rs` — each recipient's state for a thread, for the staff on it.
//! * `startup.rs` — runner, worker and server.

pub mod config;
pub mod delivery;
pub mod grpc;
pub mod mailer;
pub mod projection;
pub mod startup;

pub use config::{Clock, Config, Smtp, TlsMode};
pub use projection::NotifyProjection;
pub use startup::Application;
