//! The inbox service's errors: the one kind every read service has
//! (`careline_read_kit::QueryError`), named for messages, and the one place they
//! become gRPC statuses.

/// The inbox service, as its errors name it.
#[derive(Debug)]
pub struct Inbox;

impl careline_read_kit::ReadService for Inbox {
    const NAME: &'static str = "inbox";
    const READ_MODEL: &'static str = "the inbox";
    const GRPC: &'static str = "careline.inbox.v1.InboxService";
}

pub type Error = careline_read_kit::QueryError<Inbox>;
