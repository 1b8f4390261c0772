//! How often one client (a person, an address) may do one thing, per
//! instance of a service: at most `most` in any `window`. The command
//! service limits posts a minute (a runaway client or a flood fills no
//! patient's record); the inbox, carer look-ups and join-code look-ups (no
//! guessing); the web, sign-in starts per network address.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients tracked at most; past it, those idle for a window are forgotten.
const CLIENTS_MAX: usize = 100_000;

#[derive(Debug)]
pub struct Limit {
    most: usize,
    window: Duration,
    taken: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limit {
    /// At most `most` in any `window`.
    pub fn new(most: usize, window: Duration) -> Self {
        Self {
            most,
            window,
            taken: Mutex::new(HashMap::new()),
        }
    }

    /// At most `most` a minute.
    pub fn per_minute(most: usize) -> Self {
        Self::new(most, Duration::from_secs(60))
    }

    /// Takes one of `client`'s slots of the window, in one step with the
    /// check (so concurrent calls cannot all pass a check before any is
    /// counted): `Ok` with the slot taken, or how long until one is free.
    /// A call that then does nothing gives its slot back ([`Self::give_back`]).
    pub fn take(&self, client: &str, now: Instant) -> Result<Instant, Duration> {
        let window = self.window;
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        if taken.len() >= CLIENTS_MAX && !taken.contains_key(client) {
            taken.retain(|_, r| r.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let recent = taken.entry(client.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= self.most {
            return Err(recent
                .front()
                .map_or(Duration::ZERO, |t| window - now.duration_since(*t)));
        }
        recent.push_back(now);
        Ok(now)
    }

    /// Gives back the slot taken at `taken` (the call was refused, or it
    /// was a retry answered from the log).
    pub fn give_back(&self, client: &str, taken: Instant) {
        let mut all = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(recent) = all.get_mut(client)
            && let Some(i) = recent.iter().rposition(|t| *t == taken)
        {
            recent.remove(i);
        }
    }

    /// How many a window.
    pub fn most(&self) -> usize {
        self.most
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// A refusal for a call over the limit: `RESOURCE_EXHAUSTED`, saying
    /// `what` and when to try again.
    pub fn refusal(&self, what: &str, wait: Duration) -> tonic::Status {
        tonic::Status::resource_exhausted(format!(
            "too many {what}: at most {} {}; try again in {} s",
            self.most,
            per(self.window),
            wait.as_secs().max(1)
        ))
    }
}

/// "a minute", "an hour", "in 90 s".
fn per(window: Duration) -> String {
    match window.as_secs() {
        60 => "a minute".into(),
        3600 => "an hour".into(),
        s => format!("in {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_until_the_minute_has_passed() {
        let limit = Limit::per_minute(2);
        let start = Instant::now();
        assert!(limit.take("nina", start).is_ok());
        assert!(limit.take("nina", start + Duration::from_secs(10)).is_ok());
        let wait = limit
            .take("nina", start + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        // Someone else is not held up.
        assert!(limit.take("ned", start + Duration::from_secs(20)).is_ok());
        // A minute after the first post, one more is allowed.
        assert!(limit.take("nina", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_slot_given_back_is_free_again() {
        let limit = Limit::per_minute(1);
        let start = Instant::now();
        let taken = limit.take("nina", start).unwrap();
        assert!(limit.take("nina", start).is_err());
        limit.give_back("nina", taken);
        assert!(limit.take("nina", start).is_ok());
    }

    #[test]
    fn concurrent_posts_never_pass_the_limit_together() {
        let limit = std::sync::Arc::new(Limit::per_minute(60));
        let now = Instant::now();
        let threads: Vec<_> = (0..90)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || limit.take("nina", now).is_ok())
            })
            .collect();
        let passed = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(passed, 60);
    }
}
