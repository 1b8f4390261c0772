//! The audit service's errors: the one kind every read service has
//! (`careline_read_kit::QueryError`), named for messages, and the one place they
//! become gRPC statuses.

/// The audit service, as its errors name it.
#[derive(Debug)]
pub struct Audit;

impl careline_read_kit::ReadService for Audit {
    const NAME: &'static str = "audit";
    const READ_MODEL: &'static str = "the audit trail";
    const GRPC: &'static str = "careline.audit.v1.AuditService";
}

pub type Error = careline_read_kit::QueryError<Audit>;
