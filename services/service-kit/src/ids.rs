//! Ids as they cross the API: one parser for every service, and a type per
//! kind of id, so a query or a command cannot take a team's id where a
//! thread's belongs.
//!
//! An id is a UUID other than the nil one, given in any form `uuid` reads
//! (surrounding spaces trimmed) and always written canonically (lowercase,
//! hyphenated), the form the log and the read models hold.

use std::fmt;

use uuid::Uuid;

/// A field that is not an id: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadId {
    pub field: &'static str,
    pub message: String,
}

impl From<BadId> for tonic::Status {
    fn from(e: BadId) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

/// `value` as an id, or why `field` is not one.
pub fn parse(field: &'static str, value: &str) -> Result<Uuid, BadId> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(BadId {
            field,
            message: "is required".into(),
        });
    }
    match Uuid::parse_str(trimmed) {
        Ok(id) if !id.is_nil() => Ok(id),
        _ => Err(BadId {
            field,
            message: format!("{} is not a UUID", crate::echo(value)),
        }),
    }
}

/// `value` as an id in canonical form.
pub fn canonical(field: &'static str, value: &str) -> Result<String, BadId> {
    parse(field, value).map(|id| id.to_string())
}

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// `value` as this kind of id, or why `field` is not one.
            pub fn parse(field: &'static str, value: &str) -> Result<Self, BadId> {
                parse(field, value).map(Self)
            }

            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    )*};
}

id_type!(
    /// A conversation's id (a thread aggregate).
    ThreadId,
    /// Anyone's id: a patient, a carer or a member of staff (a person aggregate).
    PersonId,
    /// A team's id.
    TeamId,
    /// A patient's id, which is also their record's.
    PatientId,
    /// A message's id within its thread.
    MessageId,
    /// A record-access grant's id.
    GrantId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_in_any_form_and_written_canonically() {
        let id = Uuid::now_v7();
        let upper = format!("  {}  ", id.simple().to_string().to_uppercase());
        let parsed = ThreadId::parse("thread_id", &upper).unwrap();
        assert_eq!(parsed.to_string(), id.to_string());
        assert_eq!(parsed.uuid(), id);
        assert_eq!(String::from(parsed), id.to_string());
    }

    #[test]
    fn refusals_name_the_field() {
        let empty = TeamId::parse("team_id", " ").unwrap_err();
        assert_eq!(empty.to_string(), "team_id: is required");
        let nil = PersonId::parse("person_id", &Uuid::nil().to_string()).unwrap_err();
        assert_eq!(nil.field, "person_id");
        let junk = PatientId::parse("patient_id", "not-an-id").unwrap_err();
        assert_eq!(junk.to_string(), "patient_id: \"not-an-id\" is not a UUID");
        let status = tonic::Status::from(junk);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("patient_id:"));
    }
}

/// The ids an account at an identity provider (an OpenID Connect issuer
/// and the subject its ID tokens name) is known by: the same for the web
/// service that signs people in and the command service that records the
/// link, derived, so that no table has to say which is which.
/// The ids of a hospital system's notice, derived from the system and its
/// own reference (an appointment id): the same reference is the same
/// command, and, for a new thread, the same thread.
pub mod notice {
    use uuid::Uuid;

    const COMMANDS: Uuid = Uuid::from_u128(0x9d0e_44a1_7b3c_4c55_8f1e_2a6d_c3b9_0e47);
    const THREADS: Uuid = Uuid::from_u128(0x41c8_e2f7_06b5_4d9a_b3e0_7f12_5a8c_d6e1);

    fn name(system: &str, reference: &str) -> Vec<u8> {
        let mut name = Vec::with_capacity(system.len() + reference.len() + 8);
        name.extend_from_slice(&(system.len() as u64).to_be_bytes());
        name.extend_from_slice(system.as_bytes());
        name.extend_from_slice(reference.as_bytes());
        name
    }

    /// The command id (and event and message id) of `system`'s notice
    /// `reference`.
    pub fn command(system: &str, reference: &str) -> Uuid {
        Uuid::new_v5(&COMMANDS, &name(system, reference))
    }

    /// The id of the thread `system`'s notice `reference` starts.
    pub fn thread(system: &str, reference: &str) -> Uuid {
        Uuid::new_v5(&THREADS, &name(system, reference))
    }
}

pub mod identity {
    use uuid::Uuid;

    /// The namespace of identity-account ids.
    const ACCOUNTS: Uuid = Uuid::from_u128(0x6a1f_3c2e_8d4b_5e70_9c21_0b7a_4f3e_d815);
    /// The namespace of the patient records signed up by such an account.
    const SIGN_UPS: Uuid = Uuid::from_u128(0x2b7e_91d4_c05a_4f38_a6e2_5d19_80c4_73fa);

    fn name(issuer: &str, subject: &str) -> Vec<u8> {
        // The issuer's length first: two different pairs never make one name.
        let mut name = Vec::with_capacity(issuer.len() + subject.len() + 8);
        name.extend_from_slice(&(issuer.len() as u64).to_be_bytes());
        name.extend_from_slice(issuer.as_bytes());
        name.extend_from_slice(subject.as_bytes());
        name
    }

    /// The id of the `identity` aggregate of this account.
    pub fn account(issuer: &str, subject: &str) -> Uuid {
        Uuid::new_v5(&ACCOUNTS, &name(issuer, subject))
    }

    /// An id of the issuer alone (a key where its URL's characters do not go).
    pub fn issuer(issuer: &str) -> Uuid {
        Uuid::new_v5(&ACCOUNTS, issuer.as_bytes())
    }

    /// The id of the patient record this account signs up (a team's join
    /// code): only this account can be linked to it that way.
    pub fn sign_up_patient(issuer: &str, subject: &str) -> Uuid {
        Uuid::new_v5(&SIGN_UPS, &name(issuer, subject))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn each_account_has_its_own_ids() {
            let a = account("https://idp.example", "alice");
            assert_eq!(a, account("https://idp.example", "alice"));
            assert_ne!(a, account("https://idp.example", "alicf"));
            // The boundary between issuer and subject is part of the name.
            assert_ne!(account("https://a", "bc"), account("https://ab", "c"));
            assert_ne!(a, sign_up_patient("https://idp.example", "alice"));
        }
    }
}
