//! Signed events: every event carries the Ed25519 signature of the service
//! that wrote it, over its subject and its bytes, in the
//! `Careline-Signature` header (`<key id>.<base64url signature>`). A reader
//! holding the writers' public keys checks each event without trusting the
//! NATS configuration: an event whose signature is missing, does not check,
//! or is by a key that may not write where it stands is set aside as forged.
//!
//! Two kinds of writer: the command service signs domain events; each read
//! service signs the reads it records (the access subjects) with a key of
//! its own. The command service's key is trusted anywhere; a read
//! service's only on the access subjects. Keys rotate as the token keys do:
//! a new key id is added to every reader's list, then the writer signs with
//! it, then the old one is removed once no event it signed need be read
//! (a rebuild reads from the first event: keep old public keys listed).
//!
//! Settings: `CARELINE_EVENT_SIGNING_KEY` (this process's private key,
//! `key-id:base64url-seed`) and `CARELINE_EVENT_PUBLIC_KEYS` (every
//! writer's public key, `command=key-id:base64url,reads=key-id:base64url,…`).
//! Without public keys a process checks nothing (and says so at start).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// The header an event's signature travels in.
pub const SIGNATURE_HEADER: &str = "Careline-Signature";

/// The setting of this process's private key.
pub const SIGNING_KEY_VAR: &str = "CARELINE_EVENT_SIGNING_KEY";

/// The setting of every writer's public key.
pub const PUBLIC_KEYS_VAR: &str = "CARELINE_EVENT_PUBLIC_KEYS";

/// What a key may sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// The command service: every event.
    Command,
    /// A read service: the reads it records, on the access subjects.
    Reads,
}

impl Writer {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "command" => Ok(Self::Command),
            "reads" => Ok(Self::Reads),
            other => Err(format!(
                "{other:?} is not a writer: command (the command service) or reads (a read service)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Reads => "reads",
        }
    }
}

/// The bytes a signature covers: the subject, a zero byte, the payload.
fn signed_bytes(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(subject.len() + 1 + payload.len());
    bytes.extend_from_slice(subject.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(payload);
    bytes
}

fn check_kid(kid: &str) -> Result<(), String> {
    if kid.is_empty()
        || kid.len() > 64
        || !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "key id {kid:?}: 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

/// This process's private key: it signs every event the process appends.
#[derive(Clone)]
pub struct EventSigner {
    kid: String,
    key: SigningKey,
}

impl fmt::Debug for EventSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventSigner({:?})", self.kid)
    }
}

impl PartialEq for EventSigner {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.key.verifying_key() == other.key.verifying_key()
    }
}

impl Eq for EventSigner {}

impl EventSigner {
    pub fn from_seed(kid: &str, seed: [u8; 32]) -> Result<Self, String> {
        check_kid(kid)?;
        Ok(Self {
            kid: kid.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A new key from the operating system's randomness.
    pub fn generate(kid: &str) -> Result<Self, String> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
        Self::from_seed(kid, seed)
    }

    /// `key-id:base64url-seed`, as [`SIGNING_KEY_VAR`] holds it.
    pub fn from_private_key(text: &str) -> Result<Self, String> {
        let (kid, bytes) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{SIGNING_KEY_VAR}: 'key-id:base64url-seed'"))?;
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(bytes.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{SIGNING_KEY_VAR}: not a base64url 32-byte seed"))?;
        Self::from_seed(kid.trim(), seed)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn private_key(&self) -> String {
        format!(
            "{}:{}",
            self.kid,
            URL_SAFE_NO_PAD.encode(self.key.to_bytes())
        )
    }

    /// This key's entry in [`PUBLIC_KEYS_VAR`], for `writer`.
    pub fn public_key(&self, writer: Writer) -> String {
        format!(
            "{}={}:{}",
            writer.name(),
            self.kid,
            URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes())
        )
    }

    /// The header value for an event of `payload` on `subject`.
    pub fn sign(&self, subject: &str, payload: &[u8]) -> String {
        let signature = self.key.sign(&signed_bytes(subject, payload));
        format!(
            "{}.{}",
            self.kid,
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// Every writer's public key, by key id: what a reader checks events with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventKeys {
    keys: BTreeMap<String, (Writer, VerifyingKey)>,
}

impl EventKeys {
    /// `writer=key-id:base64url,…`, as [`PUBLIC_KEYS_VAR`] holds it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: String| format!("{PUBLIC_KEYS_VAR}: {entry:?}: {why}");
            let (writer, key) = entry
                .split_once('=')
                .ok_or_else(|| bad("'writer=key-id:base64url'".into()))?;
            let writer = Writer::parse(writer.trim()).map_err(bad)?;
            let (kid, bytes) = key
                .split_once(':')
                .ok_or_else(|| bad("'writer=key-id:base64url'".into()))?;
            check_kid(kid.trim()).map_err(bad)?;
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(bytes.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("not a base64url 32-byte public key".into()))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad("not an Ed25519 public key".into()))?;
            if keys.insert(kid.trim().to_string(), (writer, key)).is_some() {
                return Err(bad("this key id is listed twice".into()));
            }
        }
        if keys.is_empty() {
            return Err(format!("{PUBLIC_KEYS_VAR} lists no key"));
        }
        Ok(Self { keys })
    }

    /// The key ids, by writer: `command: k1; reads: inbox-1, audit-1`.
    pub fn describe(&self) -> String {
        [Writer::Command, Writer::Reads]
            .iter()
            .filter_map(|writer| {
                let kids: Vec<&str> = self
                    .keys
                    .iter()
                    .filter(|(_, (w, _))| w == writer)
                    .map(|(kid, _)| kid.as_str())
                    .collect();
                (!kids.is_empty()).then(|| format!("{}: {}", writer.name(), kids.join(", ")))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether the event of `payload` on `subject` (an access subject when
    /// `access`), signed `header`, is by a key that may write there.
    pub fn check(
        &self,
        subject: &str,
        access: bool,
        payload: &[u8],
        header: Option<&str>,
    ) -> Result<(), String> {
        let (kid, key, signature) = self.claimed(access, header)?;
        key.verify_strict(&signed_bytes(subject, payload), &signature)
            .map_err(|_| format!("a signature by key {kid:?} that does not check"))
    }

    /// [`check`](Self::check) of many events at once, each one's answer in
    /// order. Their signatures are verified together (Ed25519's batch
    /// check costs an event a fraction of one alone); only when the batch
    /// fails is each verified alone, to say which.
    pub fn check_all(&self, events: &[Checked<'_>]) -> Vec<Result<(), String>> {
        let mut answers: Vec<Result<(), String>> = Vec::with_capacity(events.len());
        let mut batch = Vec::new();
        for (i, e) in events.iter().enumerate() {
            match self.claimed(e.access, e.signature) {
                Ok((kid, key, signature)) => {
                    batch.push((i, kid, key, signature, signed_bytes(e.subject, e.payload)));
                    answers.push(Ok(()));
                }
                Err(why) => answers.push(Err(why)),
            }
        }
        let messages: Vec<&[u8]> = batch.iter().map(|b| b.4.as_slice()).collect();
        let signatures: Vec<Signature> = batch.iter().map(|b| b.3).collect();
        let keys: Vec<VerifyingKey> = batch.iter().map(|b| b.2).collect();
        if batch.len() > 1 && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return answers;
        }
        for (i, kid, key, signature, bytes) in &batch {
            if key.verify_strict(bytes, signature).is_err() {
                answers[*i] = Err(format!("a signature by key {kid:?} that does not check"));
            }
        }
        answers
    }

    /// The key and signature `header` claims, once it names a key that may
    /// write there (an access subject when `access`).
    fn claimed<'h>(
        &self,
        access: bool,
        header: Option<&'h str>,
    ) -> Result<(&'h str, VerifyingKey, Signature), String> {
        let header = header.ok_or("unsigned")?;
        let (kid, signature) = header
            .split_once('.')
            .ok_or("a signature that is not 'key-id.signature'")?;
        let (writer, key) = self
            .keys
            .get(kid)
            .ok_or_else(|| format!("signed by key {kid:?}, which is not a writer's"))?;
        if *writer == Writer::Reads && !access {
            return Err(format!(
                "signed by key {kid:?}, a read service's, which writes reads only"
            ));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or("a signature that is not 64 base64url bytes")?;
        Ok((kid, *key, signature))
    }
}

/// One event to [`EventKeys::check_all`].
#[derive(Clone, Copy, Debug)]
pub struct Checked<'a> {
    pub subject: &'a str,
    /// On an access subject (where a read service's key may write).
    pub access: bool,
    pub payload: &'a [u8],
    pub signature: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(kid: &str, writer: Writer) -> (EventSigner, EventKeys) {
        let signer = EventSigner::generate(kid).unwrap();
        let keys = EventKeys::parse(&signer.public_key(writer)).unwrap();
        (signer, keys)
    }

    #[test]
    fn a_signature_checks_for_its_subject_and_bytes_only() {
        let (signer, keys) = pair("c1", Writer::Command);
        let subject = "careline.events.thread.42";
        let header = signer.sign(subject, b"event");
        assert_eq!(keys.check(subject, false, b"event", Some(&header)), Ok(()));
        assert!(keys.check(subject, false, b"evenT", Some(&header)).is_err());
        assert!(
            keys.check("careline.events.thread.43", false, b"event", Some(&header))
                .is_err()
        );
        assert_eq!(
            keys.check(subject, false, b"event", None),
            Err("unsigned".into())
        );
        let (other, _) = pair("c1", Writer::Command);
        let forged = other.sign(subject, b"event");
        assert!(
            keys.check(subject, false, b"event", Some(&forged))
                .unwrap_err()
                .contains("does not check")
        );
    }

    #[test]
    fn many_are_checked_at_once_and_each_failure_is_named() {
        let (signer, keys) = pair("c1", Writer::Command);
        let subjects: Vec<String> = (0..20)
            .map(|i| format!("careline.events.thread.{i}"))
            .collect();
        let payloads: Vec<Vec<u8>> = (0..20).map(|i| format!("event {i}").into_bytes()).collect();
        let mut signatures: Vec<Option<String>> = subjects
            .iter()
            .zip(&payloads)
            .map(|(s, p)| Some(signer.sign(s, p)))
            .collect();
        let events = |signatures: &[Option<String>]| -> Vec<Result<(), String>> {
            let checked: Vec<Checked<'_>> = (0..20)
                .map(|i| Checked {
                    subject: &subjects[i],
                    access: false,
                    payload: &payloads[i],
                    signature: signatures[i].as_deref(),
                })
                .collect();
            keys.check_all(&checked)
        };
        assert!(events(&signatures).iter().all(Result::is_ok));
        // One signed for another event, one unsigned: those two only.
        signatures[3] = Some(signer.sign(&subjects[4], &payloads[4]));
        signatures[11] = None;
        let answers = events(&signatures);
        for (i, answer) in answers.iter().enumerate() {
            match i {
                3 => assert!(answer.as_ref().unwrap_err().contains("does not check")),
                11 => assert_eq!(answer, &Err("unsigned".to_string())),
                _ => assert!(answer.is_ok(), "{i}: {answer:?}"),
            }
        }
    }

    #[test]
    fn a_read_services_key_writes_reads_only() {
        let (reads, keys) = pair("inbox-1", Writer::Reads);
        let access = "careline.events.access.7";
        let header = reads.sign(access, b"read");
        assert_eq!(keys.check(access, true, b"read", Some(&header)), Ok(()));
        let domain = "careline.events.thread.42";
        let header = reads.sign(domain, b"posted");
        assert!(
            keys.check(domain, false, b"posted", Some(&header))
                .unwrap_err()
                .contains("writes reads only")
        );
    }

    #[test]
    fn keys_read_back_and_bad_settings_are_named() {
        let signer = EventSigner::generate("k-2027").unwrap();
        let again = EventSigner::from_private_key(&signer.private_key()).unwrap();
        assert_eq!(signer, again);
        let two = format!(
            "{},{}",
            signer.public_key(Writer::Command),
            EventSigner::generate("inbox")
                .unwrap()
                .public_key(Writer::Reads)
        );
        assert_eq!(
            EventKeys::parse(&two).unwrap().describe(),
            "command: k-2027; reads: inbox"
        );
        assert!(EventKeys::parse("").is_err());
        assert!(
            EventKeys::parse("admin=k:AAAA")
                .unwrap_err()
                .contains("not a writer")
        );
        assert!(EventSigner::from_private_key("no-colon").is_err());
        assert!(format!("{signer:?}").contains("k-2027"));
        assert!(!format!("{signer:?}").contains(&signer.private_key()));
    }
}
