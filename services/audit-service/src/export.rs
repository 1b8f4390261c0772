//! A record's trail as JSON lines, or as an HL7 FHIR R4 `Bundle` of
//! `AuditEvent` resources.

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::chain::{Entry, hex};
use crate::describe::Kind;

pub const JSON_LINES: &str = "application/x-ndjson";
pub const FHIR_JSON: &str = "application/fhir+json";

/// RFC 3339 in UTC from microseconds since the epoch.
pub fn instant(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// One entry as a JSON object (one line of the JSON-lines export).
pub fn json(e: &Entry) -> Value {
    let d = &e.draft;
    json!({
        "chain": d.chain,
        "seq": e.seq,
        "position": d.position,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "kind": match d.kind { Kind::Action => "action", Kind::View => "view" },
        "occurred_at": instant(d.occurred_at),
        "actor": {
            "id": d.actor_id,
            "name": d.actor_name,
            "role": d.role,
            "on_behalf_of": d.on_behalf_of,
        },
        "action": d.action,
        "patient_id": d.patient_id,
        "thread_id": d.thread_id,
        "call": d.call,
        "previous_hash": hex(&e.previous_hash),
        "hash": hex(&e.hash),
    })
}

/// The FHIR AuditEvent action code: C(reate), R(ead), U(pdate).
fn action_code(e: &Entry) -> &'static str {
    let t = e.draft.event_type.as_str();
    if e.draft.kind == Kind::View {
        "R"
    } else if t.ends_with("Started")
        || t.ends_with("Registered")
        || t.ends_with("Created")
        || t == "MessagePosted"
    {
        "C"
    } else {
        "U"
    }
}

/// One entry as an HL7 FHIR R4 AuditEvent resource.
pub fn audit_event(e: &Entry) -> Value {
    let d = &e.draft;
    let mut agents = vec![json!({
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient"
        }]},
        "role": [{"text": d.role}],
        "who": {
            "identifier": {"system": "urn:careline:person", "value": d.actor_id},
            "display": d.actor_name
        },
        "name": d.actor_name,
        "requestor": true
    })];
    if !d.on_behalf_of.is_empty() {
        agents.push(json!({
            "role": [{"text": "on behalf of"}],
            "who": {"reference": format!("Patient/{}", d.on_behalf_of)},
            "requestor": false
        }));
    }
    let mut entities = Vec::new();
    if !d.patient_id.is_empty() {
        entities.push(json!({
            "what": {"reference": format!("Patient/{}", d.patient_id)},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1", "display": "Person"
            },
            "role": {
                "system": "http://terminology.hl7.org/CodeSystem/object-role",
                "code": "1", "display": "Patient"
            }
        }));
    }
    let mut details = vec![
        json!({"type": "event-type", "valueString": d.event_type}),
        json!({"type": "log-position", "valueString": d.position.to_string()}),
        json!({"type": "chain", "valueString": d.chain}),
        json!({"type": "chain-seq", "valueString": e.seq.to_string()}),
        json!({"type": "previous-hash", "valueString": hex(&e.previous_hash)}),
        json!({"type": "hash", "valueString": hex(&e.hash)}),
    ];
    if !d.call.is_empty() {
        details.push(json!({"type": "call", "valueString": d.call}));
    }
    entities.push(json!({
        "what": {"identifier": {
            "system": "urn:careline:thread",
            "value": if d.thread_id.is_empty() { d.chain.clone() } else { d.thread_id.clone() }
        }},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2", "display": "System Object"
        },
        "description": d.action,
        "detail": details
    }));
    json!({
        "resourceType": "AuditEvent",
        "id": d.event_id,
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record"
        },
        "subtype": [{"system": "urn:careline:event-type", "code": d.event_type}],
        "action": action_code(e),
        "recorded": instant(d.occurred_at),
        "outcome": "0",
        "outcomeDesc": d.action,
        "agent": agents,
        "source": {
            "site": "Careline",
            "observer": {"display": "Careline audit service"},
            "type": [{
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server"
            }]
        },
        "entity": entities
    })
}

/// The opening of a FHIR Bundle whose entries follow, comma-separated.
pub fn bundle_start(patient_id: &str, now_micros: i64) -> String {
    format!(
        "{{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":{},\"meta\":{{\"tag\":[{{\"system\":\"urn:careline:audit\",\"code\":\"record-trail\",\"display\":{}}}]}},\"entry\":[",
        Value::String(instant(now_micros)),
        Value::String(format!("Audit trail of patient record {patient_id}"))
    )
}

pub const BUNDLE_END: &str = "]}";

/// One Bundle entry.
pub fn bundle_entry(e: &Entry) -> Value {
    json!({
        "fullUrl": format!("urn:uuid:{}", e.draft.event_id),
        "resource": audit_event(e)
    })
}
