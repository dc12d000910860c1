//! The `total` of `ListPosts`, kept for a short while per filter.
//!
//! A page of posts is one index walk, but its total has to read every matching row: on a table
//! of a hundred thousand posts that is a quarter of a second, against a fraction of a
//! millisecond for the page. A dashboard pages and refreshes the same filters over and over, so
//! each filter's total is kept for `ttl` and, once older, served while one caller recounts in
//! the background (stale-while-revalidate): only the first request for a filter ever waits for
//! a count. With a `ttl` of zero every request counts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Distinct filters remembered before the map is emptied (a bound on hostile filter churn).
const CAPACITY: usize = 4_096;

#[derive(Debug)]
struct Entry {
    total: u64,
    counted_at: Instant,
    recounting: bool,
}

/// What the cache knows about one filter's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Counted within the last `ttl`.
    Fresh(u64),
    /// Older than `ttl`; `recount` is true for exactly one caller, who should count again.
    Stale { total: u64, recount: bool },
    /// Never counted: count now, holding [`TotalCache::first_count_lock`].
    Missing,
    /// The cache is off: every request counts, in parallel.
    Off,
}

#[derive(Debug)]
pub struct TotalCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    /// One lock per filter being counted for the first time, so a burst of requests for a new
    /// filter runs one count, not one each.
    first_counts: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TotalCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            first_counts: Mutex::new(HashMap::new()),
        }
    }

    /// The lock to hold while counting `key` for the first time; look it up again once held.
    pub fn first_count_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .first_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if locks.len() >= CAPACITY && !locks.contains_key(key) {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Arc::clone(locks.entry(key.to_owned()).or_default())
    }

    pub fn lookup(&self, key: &str) -> Lookup {
        if self.ttl.is_zero() {
            return Lookup::Off;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get_mut(key) else {
            return Lookup::Missing;
        };
        if entry.counted_at.elapsed() < self.ttl {
            return Lookup::Fresh(entry.total);
        }
        let recount = !entry.recounting;
        entry.recounting = true;
        Lookup::Stale {
            total: entry.total,
            recount,
        }
    }

    /// The remembered total of `key`, however old, without claiming a recount.
    pub fn peek(&self, key: &str) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).map(|entry| entry.total)
    }

    /// Records a count taken just now.
    pub fn store(&self, key: &str, total: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(
            key.to_owned(),
            Entry {
                total,
                counted_at: Instant::now(),
                recounting: false,
            },
        );
    }

    /// A recount failed: let the next caller try again.
    pub fn recount_failed(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(key) {
            entry.recounting = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_then_stale_with_one_recount() {
        let cache = TotalCache::new(Duration::from_millis(30));
        assert_eq!(cache.lookup("a"), Lookup::Missing);
        cache.store("a", 7);
        assert_eq!(cache.lookup("a"), Lookup::Fresh(7));
        assert_eq!(cache.lookup("b"), Lookup::Missing);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(
            cache.lookup("a"),
            Lookup::Stale {
                total: 7,
                recount: true
            }
        );
        assert_eq!(
            cache.lookup("a"),
            Lookup::Stale {
                total: 7,
                recount: false
            }
        );
        cache.recount_failed("a");
        assert_eq!(
            cache.lookup("a"),
            Lookup::Stale {
                total: 7,
                recount: true
            }
        );
        cache.store("a", 9);
        assert_eq!(cache.lookup("a"), Lookup::Fresh(9));
    }

    #[test]
    fn zero_ttl_always_counts() {
        let cache = TotalCache::new(Duration::ZERO);
        assert_eq!(cache.lookup("a"), Lookup::Off);
    }
}
