//! A client of the Careline API: calls that carry a person's bearer token
//! (`bearer.rs`); the demo organisation, created through the command API
//! (`demo.rs`), which the operator CLI seeds for newcomers and the tests and
//! benchmarks run their scenarios in; the scenarios' steps (`steps.rs`); and
//! a hospital appointments system that notifies patients
//! (`appointments.rs`).

pub mod appointments;
pub mod bearer;
pub mod demo;
pub mod files;
pub mod steps;

pub use bearer::{Bearer, Client, client, command_id};
pub use demo::{DemoOrg, Signer};
pub use steps::Steps;
