//! The whole system for a test: command, inbox and audit services in this
//! process, on their own stream and their own database (`testkit`).

use service_kit::{Caller, Role};
pub use testkit::{Audit, System, channel};

pub async fn system(label: &str) -> System {
    System::start(
        label,
        testkit::Services {
            inbox: true,
            audit: true,
            ..Default::default()
        },
    )
    .await
}

/// The generated world's privacy officer (granted the auditor role).
pub fn auditor(world: &event_store::world::World) -> Caller {
    Caller {
        person_id: world.auditor,
        role: Role::Auditor,
        name: "Generated Auditor".into(),
    }
}

/// The generated world's operator (granted the operator role).
pub fn operator(world: &event_store::world::World) -> Caller {
    Caller {
        person_id: world.operator,
        role: Role::Operator,
        name: "Generated Operator".into(),
    }
}
