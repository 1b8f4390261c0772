//! Every refusal says why for machines as well as for people: a stable
//! reason in the status details (`google.rpc.ErrorInfo`, domain
//! `careline`, as large gRPC APIs do), beside the message written for
//! people. Callers branch on the reason ([`of`], [`is`], [`field`]), never
//! on the message's words, which may change. docs/api.md lists them.

use std::collections::HashMap;

use prost::Message;
use proto::google::rpc::{ErrorInfo, Status as RpcStatus};
use tonic::{Code, Status};

/// The `ErrorInfo.domain` of every Careline reason.
pub const DOMAIN: &str = "careline";

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// A field of the request is malformed or missing; metadata `field`.
pub const INVALID_FIELD: &str = "INVALID_FIELD";
/// The command id was used before for another command.
pub const COMMAND_ID_REUSED: &str = "COMMAND_ID_REUSED";
/// A rule forbids this person doing this.
pub const DENIED: &str = "DENIED";
/// An admin closed the caller's account: nothing can be done with it.
pub const ACCOUNT_CLOSED: &str = "ACCOUNT_CLOSED";
/// A carer's access to a patient's messages ended (consent withdrawn or
/// expired).
pub const ACCESS_ENDED: &str = "ACCESS_ENDED";
/// Not there, or not shown to this caller.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// The state does not allow it now.
pub const NOT_NOW: &str = "NOT_NOW";
/// Someone on a thread's staff side writes staff notes, not messages.
pub const STAFF_SIDE: &str = "STAFF_SIDE";
/// The person holds that staff role already.
pub const ROLE_ALREADY_HELD: &str = "ROLE_ALREADY_HELD";
/// The team has access to the record already.
pub const ACCESS_ALREADY_GRANTED: &str = "ACCESS_ALREADY_GRANTED";
/// Changed since the caller looked, or too much concurrent change: look
/// again, or retry with the same command id.
pub const STALE: &str = "STALE";
/// Too many of these just now; the message says when to try again.
pub const TOO_MANY: &str = "TOO_MANY";
/// No valid token.
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// Out of reach, or behind: retry (with the same command id).
pub const UNAVAILABLE: &str = "UNAVAILABLE";
/// A defect: the message holds a reference to the service's log.
pub const INTERNAL: &str = "INTERNAL";

/// Every reason this version gives.
pub const ALL: &[&str] = &[
    INVALID_FIELD,
    COMMAND_ID_REUSED,
    DENIED,
    ACCOUNT_CLOSED,
    ACCESS_ENDED,
    NOT_FOUND,
    NOT_NOW,
    STAFF_SIDE,
    ROLE_ALREADY_HELD,
    ACCESS_ALREADY_GRANTED,
    STALE,
    TOO_MANY,
    UNAUTHENTICATED,
    UNAVAILABLE,
    INTERNAL,
];

/// The reason a status of `code` gives when nothing more particular is
/// said.
pub fn for_code(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => INVALID_FIELD,
        Code::PermissionDenied => DENIED,
        Code::NotFound => NOT_FOUND,
        Code::FailedPrecondition | Code::AlreadyExists => NOT_NOW,
        Code::Aborted => STALE,
        Code::ResourceExhausted => TOO_MANY,
        Code::Unauthenticated => UNAUTHENTICATED,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => UNAVAILABLE,
        Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
            INTERNAL
        }
    }
}

/// A status of `code` with `message` for people and `reason` (with
/// `metadata`) for machines.
pub fn status(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: &[(&str, &str)],
) -> Status {
    let message = message.into();
    let info = ErrorInfo {
        reason: reason.to_string(),
        domain: DOMAIN.to_string(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: ERROR_INFO_TYPE.to_string(),
            value: info.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, bytes::Bytes::from(details.encode_to_vec()))
}

/// `status` with the reason its code gives.
pub fn plain(code: Code, message: impl Into<String>) -> Status {
    status(code, for_code(code), message, &[])
}

/// INVALID_ARGUMENT naming `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> Status {
    status(
        Code::InvalidArgument,
        INVALID_FIELD,
        message,
        &[("field", field)],
    )
}

/// The reason and metadata `status` carries, if it is a Careline one.
pub fn of(status: &Status) -> Option<(String, HashMap<String, String>)> {
    let details = RpcStatus::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .filter(|any| any.type_url == ERROR_INFO_TYPE)
        .filter_map(|any| ErrorInfo::decode(any.value.as_slice()).ok())
        .find(|info| info.domain == DOMAIN)
        .map(|info| (info.reason, info.metadata))
}

/// Whether `status` gives `reason`.
pub fn is(status: &Status, reason: &str) -> bool {
    of(status).is_some_and(|(r, _)| r == reason)
}

/// The field an INVALID_FIELD status names.
pub fn field(status: &Status) -> Option<String> {
    of(status).and_then(|(r, mut m)| (r == INVALID_FIELD).then(|| m.remove("field"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_travels_in_the_details_and_is_read_back() {
        let s = invalid("body", "body: write your message before sending it");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "body: write your message before sending it");
        assert!(is(&s, INVALID_FIELD));
        assert_eq!(field(&s).as_deref(), Some("body"));
        let closed = status(Code::PermissionDenied, ACCOUNT_CLOSED, "closed", &[]);
        assert!(is(&closed, ACCOUNT_CLOSED));
        assert_eq!(field(&closed), None);
        // A status without details (another server's) has no reason.
        assert_eq!(of(&Status::permission_denied("account deactivated")), None);
    }

    #[test]
    fn every_code_has_a_reason_in_the_list() {
        for code in (0..=16).map(Code::from_i32) {
            assert!(ALL.contains(&for_code(code)), "{code:?}");
        }
    }
}
