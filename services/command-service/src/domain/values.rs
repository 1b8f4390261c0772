//! Parsing request fields into checked values, once, at the boundary. Every
//! refusal names the field.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::DomainError;

pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 1_000;
pub const ROLE_LABEL_MAX: usize = 80;
pub const SUBJECT_MAX: usize = 200;
pub const BODY_MAX: usize = 20_000;
pub const REASON_MAX: usize = 500;
pub const EMAIL_MAX: usize = 254;
pub const JOIN_CODE_MAX: usize = 64;
/// Recipients (teams and professionals) named in one command.
pub const RECIPIENTS_MAX: usize = 20;
/// Carers copied in by one command.
pub const CARERS_MAX: usize = 10;
/// People on one thread, counting every expanded team member.
pub const THREAD_PARTICIPANTS_MAX: usize = 500;
/// Members of one team.
pub const TEAM_MEMBERS_MAX: usize = 500;
/// How far ahead a record-access grant may end.
pub const ACCESS_GRANT_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::InvalidArgument {
        field,
        message: message.into(),
    }
}

/// A UUID in canonical form (`service_kit::ids`, the one parser of ids).
pub fn id(field: &'static str, value: &str) -> Result<String, DomainError> {
    Ok(service_kit::ids::canonical(field, value)?)
}

/// A UUID, or `default` when empty.
pub fn id_or(field: &'static str, value: &str, default: &str) -> Result<String, DomainError> {
    if value.trim().is_empty() {
        Ok(default.to_string())
    } else {
        id(field, value)
    }
}

/// Text of `min..=max` characters, trimmed, without control characters
/// other than newlines and tabs.
pub fn text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, DomainError> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min {
        return Err(invalid(
            field,
            if min == 1 {
                "is required".to_string()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if chars > max {
        return Err(invalid(
            field,
            format!("is {chars} characters; at most {max} are allowed"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(value.to_string())
}

/// A single-line name.
pub fn name(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = text(field, value, 1, NAME_MAX)?;
    if value.contains(['\n', '\r', '\t']) {
        return Err(invalid(field, "must be a single line"));
    }
    Ok(value)
}

/// An email address (`local@domain.tld`), or empty when not `required`.
pub fn email(field: &'static str, value: &str, required: bool) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return if required {
            Err(invalid(field, "is required"))
        } else {
            Ok(String::new())
        };
    }
    let well_formed = value.len() <= EMAIL_MAX
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !well_formed {
        return Err(invalid(
            field,
            format!("{} is not an email address", service_kit::echo(value)),
        ));
    }
    Ok(value.to_string())
}

/// A patient's date of birth, hospital number and NHS number, each
/// optional, read as `service_kit::patient_identity` reads them (a date of
/// birth as people write it, held as `YYYY-MM-DD`; the NHS number's check
/// digit right). `fields` names the three request fields.
pub fn patient_identity(
    fields: [&'static str; 3],
    [date_of_birth, hospital_number, nhs_number]: [&str; 3],
) -> Result<proto::events::PatientIdentity, DomainError> {
    use service_kit::patient_identity as pi;
    Ok(proto::events::PatientIdentity {
        date_of_birth: pi::date_of_birth(date_of_birth, pi::today())
            .map_err(|m| invalid(fields[0], m))?
            .map(pi::iso)
            .unwrap_or_default(),
        hospital_number: pi::hospital_number(hospital_number).map_err(|m| invalid(fields[1], m))?,
        nhs_number: pi::nhs_number(nhs_number).map_err(|m| invalid(fields[2], m))?,
    })
}

/// A protobuf timestamp as a point in time.
pub fn timestamp(
    field: &'static str,
    value: &prost_types::Timestamp,
) -> Result<SystemTime, DomainError> {
    proto::time::to_system(value)
        .filter(|t| *t >= UNIX_EPOCH)
        .ok_or_else(|| invalid(field, "is not a valid time"))
}

/// A point in time as a protobuf timestamp.
pub fn to_timestamp(time: SystemTime) -> prost_types::Timestamp {
    proto::time::from_system(time)
}

/// A list of distinct ids, at most `max`.
pub fn ids(field: &'static str, values: &[String], max: usize) -> Result<Vec<String>, DomainError> {
    if values.len() > max {
        return Err(invalid(
            field,
            format!("names {} entries; at most {max} are allowed", values.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let parsed = id(field, value)?;
        if out.contains(&parsed) {
            return Err(invalid(field, format!("names {parsed} twice")));
        }
        out.push(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn field_of(e: DomainError) -> &'static str {
        match e {
            DomainError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_canonical_uuids() {
        let upper = "0190F5A2-1C3B-7D4E-8F60-123456789ABC";
        assert_eq!(id("x", upper).unwrap(), upper.to_lowercase());
        assert_eq!(field_of(id("team_id", "").unwrap_err()), "team_id");
        assert_eq!(field_of(id("team_id", "abc").unwrap_err()), "team_id");
        assert!(id("x", &Uuid::nil().to_string()).is_err());
        assert_eq!(id_or("x", " ", "d").unwrap(), "d");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("body", "  hi \n", 1, 5).unwrap(), "hi");
        assert_eq!(field_of(text("body", "   ", 1, 5).unwrap_err()), "body");
        assert!(text("body", "123456", 1, 5).is_err());
        assert!(text("body", "a\u{0}b", 1, 5).is_err());
        assert!(text("body", "line\nline", 1, 20).is_ok());
        assert!(name("name", "two\nlines").is_err());
        // Characters, not bytes: five accented letters fit in five.
        assert!(text("body", "ééééé", 1, 5).is_ok());
    }

    #[test]
    fn emails_are_checked() {
        assert!(email("email", "susan.turner@nhs.net", true).is_ok());
        assert_eq!(email("email", "", false).unwrap(), "");
        for bad in [
            "", "no-at", "a@b", "a@@b.c", "a b@c.d", "@c.d", "a@.c", "a@c.",
        ] {
            assert!(email("email", bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn patient_identities_name_the_wrong_field() {
        const FIELDS: [&str; 3] = ["date_of_birth", "hospital_number", "nhs_number"];
        let read = patient_identity(FIELDS, ["12/03/1950", "rx1234", "943 476 5919"]).unwrap();
        assert_eq!(read.date_of_birth, "1950-03-12");
        assert_eq!(read.hospital_number, "RX1234");
        assert_eq!(read.nhs_number, "9434765919");
        assert_eq!(
            patient_identity(FIELDS, ["", "", ""]).unwrap(),
            proto::events::PatientIdentity::default()
        );
        let wrong = |i: usize, value: &str| {
            let mut values = ["", "", ""];
            values[i] = value;
            field_of(patient_identity(FIELDS, values).unwrap_err())
        };
        assert_eq!(wrong(0, "30/02/1950"), "date_of_birth");
        assert_eq!(wrong(1, "RX 12"), "hospital_number");
        assert_eq!(wrong(2, "1234567890"), "nhs_number");
    }

    #[test]
    fn id_lists_are_bounded_and_distinct() {
        let a = Uuid::now_v7().to_string();
        assert!(ids("carer_ids", &[a.clone(), a.clone()], 5).is_err());
        assert!(ids("carer_ids", &vec![a; 6], 5).is_err());
    }
}
