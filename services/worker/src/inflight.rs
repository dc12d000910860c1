//! The entries this worker is processing right now.
//!
//! An entry in flight is also pending in Redis, so whatever re-reads pending entries must leave
//! these alone (see [`crate::reclaim`]). Tracking ends when the batch's task ends in any way,
//! including being aborted, because the guard is dropped with the task.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

impl InFlight {
    /// Marks `ids` as in flight until the returned guard is dropped.
    pub fn track(&self, ids: Vec<String>) -> InFlightGuard {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.extend(ids.iter().cloned());
        InFlightGuard {
            set: Arc::clone(&self.0),
            ids,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Ends the tracking of a batch's entries when dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    set: Arc<Mutex<HashSet<String>>>,
    ids: Vec<String>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &self.ids {
            set.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ends_with_the_guard() {
        let in_flight = InFlight::default();
        let guard = in_flight.track(vec!["1-0".into(), "2-0".into()]);
        assert!(in_flight.contains("1-0") && in_flight.contains("2-0"));
        let other = in_flight.track(vec!["3-0".into()]);
        drop(guard);
        assert!(!in_flight.contains("1-0"));
        assert!(in_flight.contains("3-0"));
        drop(other);
        assert!(in_flight.is_empty());
    }
}
