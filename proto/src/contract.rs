//! The parts of the event contract that live outside the message types:
//! subjects, headers, and which payload is which event type of which
//! aggregate. Subscribers written in Rust use these; others read the same
//! rules in `careline/events/v1/events.proto`.

use crate::events::{Actor, AggregateType, Envelope, envelope::Payload};

/// Version of the envelope layout written today.
pub const SCHEMA_VERSION: u32 = 1;

/// NATS header names carried by every event message.
pub mod headers {
    /// JetStream de-duplication id: the envelope's `event_id`.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The payload's message name, e.g. `ThreadStarted`.
    pub const EVENT_TYPE: &str = "Careline-Event-Type";
    /// The aggregate's subject token, e.g. `thread`.
    pub const AGGREGATE_TYPE: &str = "Careline-Aggregate-Type";
    /// The aggregate id.
    pub const AGGREGATE_ID: &str = "Careline-Aggregate-Id";
    /// The envelope's schema version.
    pub const SCHEMA_VERSION: &str = "Careline-Schema-Version";
}

impl AggregateType {
    /// The subject token of this aggregate type, as in
    /// `<prefix>.events.<token>.<id>`. `None` for `UNSPECIFIED`.
    pub fn subject_token(self) -> Option<&'static str> {
        match self {
            AggregateType::Unspecified => None,
            AggregateType::Thread => Some("thread"),
            AggregateType::Team => Some("team"),
            AggregateType::PatientRecord => Some("patient"),
            AggregateType::Person => Some("person"),
            AggregateType::Access => Some("access"),
            AggregateType::Identity => Some("identity"),
        }
    }

    /// The aggregate type a subject token names.
    pub fn from_subject_token(token: &str) -> Option<Self> {
        Some(match token {
            "thread" => AggregateType::Thread,
            "team" => AggregateType::Team,
            "patient" => AggregateType::PatientRecord,
            "person" => AggregateType::Person,
            "access" => AggregateType::Access,
            "identity" => AggregateType::Identity,
            _ => return None,
        })
    }
}

/// The access aggregate on which the audit service anchors the heads of the
/// audit trail's chains (`AuditAnchored`, its actor this id, role system):
/// no person has this id.
pub const ANCHOR_ID: &str = "00000000-0000-4000-8000-00000a0d17a0";

/// The subject of one aggregate instance: `<prefix>.events.<token>.<id>`.
pub fn aggregate_subject(prefix: &str, aggregate: AggregateType, id: &str) -> Option<String> {
    Some(format!(
        "{prefix}.events.{}.{id}",
        aggregate.subject_token()?
    ))
}

/// The subject filter that matches every event under a prefix.
/// A role's name as the read models and the audit trail write it
/// (`patient`, `carer`, `professional`, ...); an unknown number is
/// `unspecified`.
pub fn role_name(role: i32) -> &'static str {
    use crate::events::Role;
    match Role::try_from(role).unwrap_or(Role::Unspecified) {
        Role::Unspecified => "unspecified",
        Role::Patient => "patient",
        Role::Carer => "carer",
        Role::Professional => "professional",
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Auditor => "auditor",
        Role::System => "system",
        Role::Service => "service",
    }
}

/// The kind of person a read model's name stands for (`patient`, `carer`,
/// `professional`, `system`); anything else is unspecified.
pub fn person_kind(name: &str) -> crate::inbox::PersonKind {
    use crate::inbox::PersonKind;
    match name {
        "patient" => PersonKind::Patient,
        "carer" => PersonKind::Carer,
        "professional" => PersonKind::Professional,
        "system" => PersonKind::System,
        _ => PersonKind::Unspecified,
    }
}

/// How a notice's sender is shown: the team it spoke for and the system,
/// "Renal Unit (via Appointments)".
pub fn notice_sender(notice: &crate::events::Notice) -> String {
    format!("{} (via {})", notice.team_name, notice.system_name)
}

pub fn all_events_filter(prefix: &str) -> String {
    format!("{prefix}.events.>")
}

impl Payload {
    /// The event type: the payload's message name, e.g. `ThreadStarted`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Payload::ThreadStarted(_) => "ThreadStarted",
            Payload::MessagePosted(_) => "MessagePosted",
            Payload::ParticipantsAdded(_) => "ParticipantsAdded",
            Payload::ParticipantLeft(_) => "ParticipantLeft",
            Payload::ThreadAssigned(_) => "ThreadAssigned",
            Payload::ThreadUnassigned(_) => "ThreadUnassigned",
            Payload::ThreadCompleted(_) => "ThreadCompleted",
            Payload::ThreadArchived(_) => "ThreadArchived",
            Payload::ThreadReopened(_) => "ThreadReopened",
            Payload::ThreadReadUpTo(_) => "ThreadReadUpTo",
            Payload::StaffNotePosted(_) => "StaffNotePosted",
            Payload::StaffSideJoined(_) => "StaffSideJoined",
            Payload::TeamCreated(_) => "TeamCreated",
            Payload::TeamMemberAdded(_) => "TeamMemberAdded",
            Payload::TeamMemberRemoved(_) => "TeamMemberRemoved",
            Payload::TeamMemberContactabilityChanged(_) => "TeamMemberContactabilityChanged",
            Payload::TeamAutoCcSwitched(_) => "TeamAutoCcSwitched",
            Payload::TeamDefaultContactSet(_) => "TeamDefaultContactSet",
            Payload::TeamJoinCodeIssued(_) => "TeamJoinCodeIssued",
            Payload::TeamMemberLeadChanged(_) => "TeamMemberLeadChanged",
            Payload::TeamOpenToPatientsSet(_) => "TeamOpenToPatientsSet",
            Payload::TeamAlertsSet(_) => "TeamAlertsSet",
            Payload::PatientRegistered(_) => "PatientRegistered",
            Payload::PatientEmailVerified(_) => "PatientEmailVerified",
            Payload::PatientJoinedTeam(_) => "PatientJoinedTeam",
            Payload::CarerConsentGranted(_) => "CarerConsentGranted",
            Payload::CarerConsentRevoked(_) => "CarerConsentRevoked",
            Payload::RecordAccessGranted(_) => "RecordAccessGranted",
            Payload::RecordAccessRevoked(_) => "RecordAccessRevoked",
            Payload::PatientEmailChanged(_) => "PatientEmailChanged",
            Payload::PatientEmailVerificationRequested(_) => "PatientEmailVerificationRequested",
            Payload::PatientDetailsChanged(_) => "PatientDetailsChanged",
            Payload::ProfessionalRegistered(_) => "ProfessionalRegistered",
            Payload::CarerRegistered(_) => "CarerRegistered",
            Payload::StaffRoleGranted(_) => "StaffRoleGranted",
            Payload::StaffRoleRevoked(_) => "StaffRoleRevoked",
            Payload::PersonEmailChanged(_) => "PersonEmailChanged",
            Payload::PersonEmailVerificationRequested(_) => "PersonEmailVerificationRequested",
            Payload::PersonEmailVerified(_) => "PersonEmailVerified",
            Payload::PersonDeactivated(_) => "PersonDeactivated",
            Payload::PersonReactivated(_) => "PersonReactivated",
            Payload::SystemRegistered(_) => "SystemRegistered",
            Payload::AbsenceRecorded(_) => "AbsenceRecorded",
            Payload::AbsenceEnded(_) => "AbsenceEnded",
            Payload::RecordsViewed(_) => "RecordsViewed",
            Payload::AuditAnchored(_) => "AuditAnchored",
            Payload::IdentityLinked(_) => "IdentityLinked",
        }
    }

    /// The aggregate type this payload belongs to.
    pub fn aggregate_type(&self) -> AggregateType {
        match self {
            Payload::ThreadStarted(_)
            | Payload::MessagePosted(_)
            | Payload::ParticipantsAdded(_)
            | Payload::ParticipantLeft(_)
            | Payload::ThreadAssigned(_)
            | Payload::ThreadUnassigned(_)
            | Payload::ThreadCompleted(_)
            | Payload::ThreadArchived(_)
            | Payload::ThreadReopened(_)
            | Payload::ThreadReadUpTo(_)
            | Payload::StaffNotePosted(_)
            | Payload::StaffSideJoined(_) => AggregateType::Thread,
            Payload::TeamCreated(_)
            | Payload::TeamMemberAdded(_)
            | Payload::TeamMemberRemoved(_)
            | Payload::TeamMemberContactabilityChanged(_)
            | Payload::TeamAutoCcSwitched(_)
            | Payload::TeamDefaultContactSet(_)
            | Payload::TeamJoinCodeIssued(_)
            | Payload::TeamMemberLeadChanged(_)
            | Payload::TeamOpenToPatientsSet(_)
            | Payload::TeamAlertsSet(_) => AggregateType::Team,
            Payload::PatientRegistered(_)
            | Payload::PatientEmailVerified(_)
            | Payload::PatientJoinedTeam(_)
            | Payload::CarerConsentGranted(_)
            | Payload::CarerConsentRevoked(_)
            | Payload::RecordAccessGranted(_)
            | Payload::RecordAccessRevoked(_)
            | Payload::PatientEmailChanged(_)
            | Payload::PatientEmailVerificationRequested(_)
            | Payload::PatientDetailsChanged(_) => AggregateType::PatientRecord,
            Payload::ProfessionalRegistered(_)
            | Payload::CarerRegistered(_)
            | Payload::StaffRoleGranted(_)
            | Payload::StaffRoleRevoked(_)
            | Payload::PersonEmailChanged(_)
            | Payload::PersonEmailVerificationRequested(_)
            | Payload::PersonEmailVerified(_)
            | Payload::PersonDeactivated(_)
            | Payload::PersonReactivated(_)
            | Payload::SystemRegistered(_)
            | Payload::AbsenceRecorded(_)
            | Payload::AbsenceEnded(_) => AggregateType::Person,
            Payload::RecordsViewed(_) | Payload::AuditAnchored(_) => AggregateType::Access,
            Payload::IdentityLinked(_) => AggregateType::Identity,
        }
    }
}

/// A new envelope for `payload` on aggregate `aggregate_id`, by `actor`, at
/// `occurred_at`: its event type, aggregate type and schema version come
/// from the payload, so no writer can get them wrong. The ids (event,
/// command, correlation, causation) are the writer's to set.
pub fn envelope(
    payload: Payload,
    aggregate_id: impl Into<String>,
    actor: Actor,
    occurred_at: std::time::SystemTime,
) -> Envelope {
    Envelope {
        event_type: payload.event_type().to_string(),
        schema_version: SCHEMA_VERSION,
        aggregate_type: payload.aggregate_type() as i32,
        aggregate_id: aggregate_id.into(),
        occurred_at: Some(occurred_at.into()),
        actor: Some(actor),
        payload: Some(payload),
        ..Envelope::default()
    }
}

/// Whether `envelope`, read from `subject` of the log under `prefix`, is
/// one its subject may carry: the subject names the envelope's aggregate
/// (type and id), the payload is of that aggregate and named as the
/// envelope says, and on an access subject (which the read services may
/// write, to record reads) it is a read record of the subject's own person,
/// or on the anchor's subject ([`ANCHOR_ID`]) an audit anchor and nothing
/// else.
/// Anything else was put there by someone not allowed to write it: it is
/// set aside as forged, with this reason, by every consumer. A payload
/// this version does not know is let through (no consumer applies it).
pub fn check_origin(prefix: &str, subject: &str, envelope: &Envelope) -> Result<(), String> {
    let Some(rest) = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(".events."))
    else {
        return Err(format!("subject {subject} is not under {prefix}.events"));
    };
    let Some((token, id)) = rest.split_once('.') else {
        return Err(format!("subject {subject} names no aggregate"));
    };
    let Some(kind) = AggregateType::from_subject_token(token) else {
        return Err(format!("subject {subject} names no known aggregate type"));
    };
    if envelope.aggregate_type() != kind {
        return Err(format!(
            "an envelope of aggregate {} on {subject}",
            envelope.aggregate_type().as_str_name()
        ));
    }
    if envelope.aggregate_id != id {
        return Err(format!(
            "an envelope of aggregate {} on the subject of {id}",
            envelope.aggregate_id
        ));
    }
    let Some(payload) = &envelope.payload else {
        return Ok(());
    };
    if payload.aggregate_type() != kind {
        return Err(format!(
            "a {} (an event of {}) on {subject}",
            payload.event_type(),
            payload.aggregate_type().as_str_name()
        ));
    }
    if envelope.event_type != payload.event_type() {
        return Err(format!(
            "a {} named {:?}",
            payload.event_type(),
            envelope.event_type
        ));
    }
    if kind == AggregateType::Access {
        let actor = envelope.actor.as_ref().map(|a| a.person_id.as_str());
        if actor != Some(id) {
            return Err(format!(
                "reads recorded on the access subject of {id} by someone else ({})",
                actor.unwrap_or("nobody")
            ));
        }
        let anchor = matches!(payload, Payload::AuditAnchored(_));
        if anchor != (id == ANCHOR_ID) {
            return Err(if anchor {
                format!("an audit anchor on the access subject of {id}")
            } else {
                format!("a {} on the audit anchor's subject", payload.event_type())
            });
        }
    }
    Ok(())
}

/// Every event type of this version of the contract (the payloads of
/// `Envelope`), with its field number, read from the compiled descriptor.
pub fn event_types() -> Vec<(i32, String)> {
    use prost::Message;
    let Ok(fds) = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let Some(envelope) = fds
        .file
        .iter()
        .filter(|f| f.package() == "careline.events.v1")
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == "Envelope")
    else {
        return Vec::new();
    };
    let Some(payload_index) = envelope
        .oneof_decl
        .iter()
        .position(|o| o.name() == "payload")
    else {
        return Vec::new();
    };
    envelope
        .field
        .iter()
        .filter(|f| f.oneof_index == Some(payload_index as i32))
        .filter_map(|f| Some((f.number(), f.type_name().rsplit('.').next()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    //! These tests walk the compiled descriptor, so a payload added to the
    //! `.proto` without its name and aggregate here fails to build (the
    //! `match`es are exhaustive) or fails here (a wrong name or range).

    use super::*;
    use crate::events::Envelope;
    use prost::Message;
    use prost_types::{FileDescriptorSet, field_descriptor_proto::Type};

    fn envelope_payload_fields() -> Vec<(i32, String)> {
        let fields = event_types();
        let fds = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let envelope = fds
            .file
            .iter()
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == "Envelope")
            .unwrap();
        for f in envelope.field.iter().filter(|f| f.oneof_index.is_some()) {
            assert_eq!(f.r#type(), Type::Message);
        }
        fields
    }

    /// Decodes an envelope whose only field is an empty payload message with
    /// the given field number.
    fn payload_with_number(number: i32) -> Payload {
        let mut bytes = Vec::new();
        prost::encoding::encode_key(
            number as u32,
            prost::encoding::WireType::LengthDelimited,
            &mut bytes,
        );
        prost::encoding::encode_varint(0, &mut bytes);
        Envelope::decode(bytes.as_slice())
            .unwrap()
            .payload
            .unwrap_or_else(|| panic!("field {number} is not a known payload"))
    }

    #[test]
    fn every_payload_is_named_after_its_message() {
        let fields = envelope_payload_fields();
        assert!(fields.len() >= 27, "the contract lost payloads: {fields:?}");
        for (number, message_name) in fields {
            assert_eq!(payload_with_number(number).event_type(), message_name);
        }
    }

    #[test]
    fn payload_numbers_group_by_aggregate() {
        for (number, name) in envelope_payload_fields() {
            let expected = match number {
                100..=199 => AggregateType::Thread,
                200..=299 => AggregateType::Team,
                300..=399 => AggregateType::PatientRecord,
                400..=499 => AggregateType::Person,
                500..=599 => AggregateType::Access,
                600..=699 => AggregateType::Identity,
                _ => panic!("{name} has number {number} outside every aggregate's range"),
            };
            assert_eq!(
                payload_with_number(number).aggregate_type(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_subject_carries_only_its_own_aggregates_events_and_access_only_own_reads() {
        use crate::events::{MessagePosted, RecordsViewed};
        let reader = "0190aaaa-0000-7000-8000-000000000001";
        let actor = Actor {
            person_id: reader.into(),
            ..Actor::default()
        };
        let read = envelope(
            Payload::RecordsViewed(RecordsViewed::default()),
            reader,
            actor.clone(),
            std::time::SystemTime::now(),
        );
        let access = format!("p.events.access.{reader}");
        assert_eq!(check_origin("p", &access, &read), Ok(()));
        // Someone else's reads on this person's subject.
        let mut theirs = read.clone();
        theirs.actor.as_mut().unwrap().person_id = "someone".into();
        assert!(
            check_origin("p", &access, &theirs)
                .unwrap_err()
                .contains("someone else")
        );
        // A message dressed as a thread's, on an access subject.
        let posted = envelope(
            Payload::MessagePosted(MessagePosted::default()),
            "t1",
            actor.clone(),
            std::time::SystemTime::now(),
        );
        assert!(
            check_origin("p", &access, &posted)
                .unwrap_err()
                .contains("AGGREGATE_TYPE_THREAD")
        );
        assert_eq!(check_origin("p", "p.events.thread.t1", &posted), Ok(()));
        // The same, claiming to be of the access aggregate.
        let mut dressed = posted.clone();
        dressed.aggregate_type = AggregateType::Access as i32;
        dressed.aggregate_id = reader.into();
        assert!(
            check_origin("p", &access, &dressed)
                .unwrap_err()
                .contains("MessagePosted")
        );
        // Anchors on the anchor's subject only, and nothing else there.
        use crate::events::AuditAnchored;
        let anchor_actor = Actor {
            person_id: ANCHOR_ID.into(),
            ..Actor::default()
        };
        let anchor = envelope(
            Payload::AuditAnchored(AuditAnchored::default()),
            ANCHOR_ID,
            anchor_actor.clone(),
            std::time::SystemTime::now(),
        );
        let anchors = format!("p.events.access.{ANCHOR_ID}");
        assert_eq!(check_origin("p", &anchors, &anchor), Ok(()));
        let mut misplaced = anchor.clone();
        misplaced.aggregate_id = reader.into();
        misplaced.actor = Some(actor.clone());
        assert!(
            check_origin("p", &access, &misplaced)
                .unwrap_err()
                .contains("audit anchor")
        );
        let mut read_there = read.clone();
        read_there.aggregate_id = ANCHOR_ID.into();
        read_there.actor = Some(anchor_actor);
        assert!(
            check_origin("p", &anchors, &read_there)
                .unwrap_err()
                .contains("anchor's subject")
        );
        // Another thread's subject, another prefix, a wrong name.
        assert!(check_origin("p", "p.events.thread.t2", &posted).is_err());
        assert!(check_origin("q", "p.events.thread.t1", &posted).is_err());
        let mut renamed = posted;
        renamed.event_type = "ThreadArchived".into();
        assert!(check_origin("p", "p.events.thread.t1", &renamed).is_err());
    }

    #[test]
    fn subject_tokens_round_trip() {
        for kind in [
            AggregateType::Thread,
            AggregateType::Team,
            AggregateType::PatientRecord,
            AggregateType::Person,
            AggregateType::Access,
            AggregateType::Identity,
        ] {
            let token = kind.subject_token().unwrap();
            assert_eq!(AggregateType::from_subject_token(token), Some(kind));
        }
        assert_eq!(AggregateType::Unspecified.subject_token(), None);
        assert_eq!(
            aggregate_subject("careline", AggregateType::Thread, "abc").as_deref(),
            Some("careline.events.thread.abc")
        );
    }

    #[test]
    fn every_enum_starts_with_unspecified() {
        let fds = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        for file in fds
            .file
            .iter()
            .filter(|f| f.package().starts_with("careline."))
        {
            let nested = file.message_type.iter().flat_map(|m| m.enum_type.iter());
            for e in file.enum_type.iter().chain(nested) {
                let zero = e.value.iter().find(|v| v.number() == 0);
                assert!(
                    zero.is_some_and(|v| v.name().ends_with("_UNSPECIFIED")),
                    "enum {} in {} must start with 0 = ..._UNSPECIFIED",
                    e.name(),
                    file.name()
                );
            }
        }
    }
}
