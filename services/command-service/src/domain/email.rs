//! An email address and its verification, the same for a patient's record
//! and a professional's or carer's person: unverified when registered or
//! changed (that event is a request for its verification), verified only
//! when its owner follows the link of a request still pending.

use std::collections::BTreeSet;

use super::DomainError;

/// An address as an aggregate holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    pub email: String,
    pub verified: bool,
    /// The requests a link may still answer (ids of the events that
    /// asked): emptied when verified, replaced when the address changes.
    pub requests: BTreeSet<String>,
}

impl Address {
    /// Registered: `request` asks for its verification when there is an
    /// address and it is not (by an older log's claim) verified already.
    pub fn registered(email: &str, verified: bool, request: &str) -> Self {
        let requests = if email.is_empty() || verified {
            BTreeSet::new()
        } else {
            BTreeSet::from([request.to_string()])
        };
        Self {
            email: email.to_string(),
            verified,
            requests,
        }
    }

    pub fn changed(&mut self, email: &str, request: &str) {
        *self = Self::registered(email, false, request);
    }

    pub fn requested(&mut self, request: &str) {
        self.requests.insert(request.to_string());
    }

    pub fn confirmed(&mut self, email: &str) {
        self.email = email.to_string();
        self.verified = true;
        self.requests.clear();
    }

    /// May `email` change to `new`?
    pub fn may_change_to(&self, new: &str) -> Result<(), DomainError> {
        if self.email.eq_ignore_ascii_case(new) {
            return Err(DomainError::precondition(
                "that is already the email address on record",
            ));
        }
        Ok(())
    }

    /// May another verification email be sent?
    pub fn may_request(&self) -> Result<(), DomainError> {
        if self.email.is_empty() {
            return Err(DomainError::precondition(
                "there is no email address on record: add one first",
            ));
        }
        if self.verified {
            return Err(DomainError::precondition(
                "the email address is already verified",
            ));
        }
        Ok(())
    }

    /// Does a link for `email`, answering `request`, verify this address?
    pub fn may_confirm(&self, email: &str, request: &str) -> Result<(), DomainError> {
        let same = self.email.eq_ignore_ascii_case(email);
        if self.verified && same {
            return Err(DomainError::precondition(
                "the email address is already verified",
            ));
        }
        if !same {
            return Err(DomainError::precondition(
                "this verification link is for an address no longer on record",
            ));
        }
        if !self.requests.contains(request) {
            return Err(DomainError::precondition(
                "this verification link has been used or replaced: ask for a new verification email",
            ));
        }
        Ok(())
    }
}
