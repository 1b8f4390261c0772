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

    /// `None` when `person` may post now; else how long until they may.
    pub fn wait(&self, person: &str, now: Instant) -> Option<Duration> {
        let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        let recent = posts.get_mut(person)?;
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        (recent.len() >= self.per_minute).then(|| {
            recent
                .front()
                .map_or(Duration::ZERO, |t| WINDOW - now.duration_since(*t))
        })
    }

    /// Counts one post by `person`.
    pub fn record(&self, person: &str, now: Instant) {
        let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        if posts.len() >= PEOPLE_MAX && !posts.contains_key(person) {
            posts.retain(|_, r| r.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        posts.entry(person.to_string()).or_default().push_back(now);
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
        assert_eq!(limit.wait("nina", start), None);
        limit.record("nina", start);
        limit.record("nina", start + Duration::from_secs(10));
        let wait = limit.wait("nina", start + Duration::from_secs(20)).unwrap();
        assert_eq!(wait, Duration::from_secs(40));
        // Someone else is not held up.
        assert_eq!(limit.wait("ned", start + Duration::from_secs(20)), None);
        // A minute after the first post, one more is allowed.
        assert_eq!(limit.wait("nina", start + Duration::from_secs(60)), None);
    }
}
