//! The command and notification services on their own stream and database,
//! and an SMTP sink that writes what it receives to a maildir.

use notify_service::Smtp;

pub use testkit::{issuer, keys};

pub use testkit::mail::{Sink, header};

pub use testkit::{System, smtp};

pub async fn system(label: &str, smtp: Smtp) -> System {
    system_with_clock(label, smtp, notify_service::Clock::system()).await
}

/// As [`system`], the delivery worker reading `clock`.
pub async fn system_with_clock(label: &str, smtp: Smtp, clock: notify_service::Clock) -> System {
    System::start(
        label,
        testkit::Services {
            notify: Some(smtp),
            clock: Some(clock),
            ..Default::default()
        },
    )
    .await
}
