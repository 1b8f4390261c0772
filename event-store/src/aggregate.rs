//! Naming an aggregate instance.

use std::fmt;

use proto::events::AggregateType;

use crate::Error;

/// Longest aggregate id accepted, in bytes.
const MAX_ID_LEN: usize = 128;

/// One aggregate instance: its type and id. The id is checked on
/// construction to be usable as one NATS subject token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AggregateRef {
    kind: AggregateType,
    id: String,
}

impl AggregateRef {
    /// Names an aggregate, refusing an unspecified type or an id that is not
    /// a single subject token.
    pub fn new(kind: AggregateType, id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if kind.subject_token().is_none() {
            return Err(Error::InvalidEvent("aggregate_type is unspecified".into()));
        }
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(Error::InvalidEvent(format!(
                "aggregate_id must be 1 to {MAX_ID_LEN} bytes, got {}",
                id.len()
            )));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(Error::InvalidEvent(format!(
                "aggregate_id {id:?} contains {bad:?}; only ASCII letters, digits, '-' and '_' are allowed"
            )));
        }
        Ok(Self { kind, id })
    }

    pub fn kind(&self) -> AggregateType {
        self.kind
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The aggregate's subject under a prefix: `<prefix>.events.<type>.<id>`.
    pub fn subject(&self, prefix: &str) -> String {
        let token = self.kind.subject_token().unwrap_or("unspecified");
        format!("{prefix}.events.{token}.{}", self.id)
    }
}

impl fmt::Display for AggregateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.kind.subject_token().unwrap_or("unspecified");
        write!(f, "{token}/{}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_one_subject_token() {
        assert!(AggregateRef::new(AggregateType::Thread, "0190-ab_c").is_ok());
        for bad in ["", "a.b", "a*", ">", "a b", "é"] {
            assert!(
                AggregateRef::new(AggregateType::Thread, bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(AggregateRef::new(AggregateType::Thread, "x".repeat(129)).is_err());
        assert!(AggregateRef::new(AggregateType::Unspecified, "abc").is_err());
    }

    #[test]
    fn subject_follows_the_contract() {
        let r = AggregateRef::new(AggregateType::PatientRecord, "p1").unwrap();
        assert_eq!(r.subject("careline"), "careline.events.patient.p1");
        assert_eq!(r.to_string(), "patient/p1");
    }
}
