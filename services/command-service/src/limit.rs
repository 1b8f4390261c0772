//! How many messages one person may post a minute (threads started and
//! messages posted), per instance of the service: a runaway client or a
//! flood fills no patient's record.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// People tracked at most; past it, those idle for a minute are forgotten.
const PEOPLE_MAX: usize = 100_000;

#[derive(Debug)]
pub struct PostLimit {
    per_minute: usize,
    posts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl PostLimit {
    pub fn new(per_minute: usize) -> Self {
        Self {
            per_minute,
            posts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one of `person`'s posts of the minute, in one step with the
    /// check (so concurrent posts cannot all pass a check before any is
    /// counted): `Ok` with the slot taken, or how long until one is free.
    /// A post that then writes nothing gives its slot back ([`Self::give_back`]).
    pub fn take(&self, person: &str, now: Instant) -> Result<Instant, Duration> {
        let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        if posts.len() >= PEOPLE_MAX && !posts.contains_key(person) {
            posts.retain(|_, r| r.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let recent = posts.entry(person.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= self.per_minute {
            return Err(recent
                .front()
                .map_or(Duration::ZERO, |t| WINDOW - now.duration_since(*t)));
        }
        recent.push_back(now);
        Ok(now)
    }

    /// Gives back the slot taken at `taken` (the post was refused, or it was
    /// a retry answered from the log).
    pub fn give_back(&self, person: &str, taken: Instant) {
        let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(recent) = posts.get_mut(person)
            && let Some(i) = recent.iter().rposition(|t| *t == taken)
        {
            recent.remove(i);
        }
    }

    pub fn per_minute(&self) -> usize {
        self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_until_the_minute_has_passed() {
        let limit = PostLimit::new(2);
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
        let limit = PostLimit::new(1);
        let start = Instant::now();
        let taken = limit.take("nina", start).unwrap();
        assert!(limit.take("nina", start).is_err());
        limit.give_back("nina", taken);
        assert!(limit.take("nina", start).is_ok());
    }

    #[test]
    fn concurrent_posts_never_pass_the_limit_together() {
        let limit = std::sync::Arc::new(PostLimit::new(60));
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
