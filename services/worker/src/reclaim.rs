//! When to take back work left pending, and when to read new entries.
//!
//! Two kinds of pending entries need a worker's attention besides new ones:
//!
//! - **Its own**, left by a failed or abandoned batch, or by a previous process under the same
//!   consumer name. They are re-read with `XREADGROUP ... 0` (a "scan", page by page): at start,
//!   right after an outage ends, a little after entries were refused for their content (with a
//!   growing delay, so a bad entry reaches `MAX_DELIVERIES` in seconds, not in a tight loop), and
//!   at each claim interval when nothing is in flight.
//! - **Other consumers'**, idle for longer than `CLAIM_IDLE`: taken over with `XAUTOCLAIM` every
//!   `CLAIM_INTERVAL`, which also catches this worker's own forgotten entries.
//!
//! Neither ever picks up an entry that is in flight in this worker. A scan starts only when no
//! batch is in flight, and while it runs nothing else is read, so every entry it returns was
//! left over. An entry in flight anywhere was delivered less than `BATCH_TIMEOUT` ago (a batch
//! starts when its entries are read and is abandoned at that deadline), which is shorter than
//! `CLAIM_IDLE`, so `XAUTOCLAIM` cannot select it; the read loop also drops any claimed entry
//! that is in its in-flight set, as a second line of defence.

use std::time::Duration;

use pulse_runtime::backoff::Backoff;
use tokio::time::Instant;

/// What the read loop should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Wait for the batches in flight to finish (a scan is due).
    Drain,
    /// Re-read own pending entries after this id.
    Scan { after: String },
    /// Take over idle entries, continuing the XAUTOCLAIM scan at this cursor.
    Claim { cursor: String },
    /// Read new entries.
    ReadNew,
}

/// The schedule of scans and claims.
#[derive(Debug)]
pub struct Reclaim {
    claim_interval: Duration,
    next_claim: Instant,
    claim_cursor: String,
    /// The cursor of the scan in progress.
    scanning: Option<String>,
    /// When the next scan should start.
    scan_due: Option<Instant>,
    /// Delays before re-reading entries refused for their content; they grow until a scan
    /// finds no own pending entry at all.
    retry: Backoff,
    /// Whether a scan already ran in this claim interval (so the claim is not postponed again).
    scanned_this_interval: bool,
}

impl Reclaim {
    /// A schedule that starts with a scan of own entries, then a claim.
    pub fn new(claim_interval: Duration, retry_max: Duration) -> Self {
        let now = Instant::now();
        Self {
            claim_interval,
            next_claim: now,
            claim_cursor: "0-0".to_owned(),
            scanning: None,
            scan_due: Some(now),
            retry: Backoff::new(Duration::from_millis(200), retry_max),
            scanned_this_interval: false,
        }
    }

    /// What to do now, given whether any batch is in flight.
    pub fn next(&mut self, in_flight: bool) -> Next {
        let now = Instant::now();
        if let Some(after) = &self.scanning {
            return Next::Scan {
                after: after.clone(),
            };
        }
        let scan_due = self.scan_due.is_some_and(|at| at <= now);
        let claim_due = self.next_claim <= now;
        let periodic = claim_due && !in_flight && !self.scanned_this_interval;
        if scan_due || periodic {
            if in_flight {
                return Next::Drain;
            }
            self.scan_due = None;
            self.scanned_this_interval = true;
            self.scanning = Some("0".to_owned());
            return Next::Scan {
                after: "0".to_owned(),
            };
        }
        if claim_due {
            return Next::Claim {
                cursor: self.claim_cursor.clone(),
            };
        }
        Next::ReadNew
    }

    /// A scan page was read: `last` is its last id, or `None` when the page was empty and the
    /// scan is over.
    pub fn scanned(&mut self, last: Option<String>) {
        match last {
            Some(last) => self.scanning = Some(last),
            None => {
                if self.scanning.as_deref() == Some("0") {
                    // Nothing of ours is pending: no refused entry is waiting any more.
                    self.retry.reset();
                }
                self.scanning = None;
            }
        }
    }

    /// An XAUTOCLAIM call returned `next` as its cursor: "0-0" means the pending list was
    /// scanned to its end, and the next claim waits for the interval; otherwise it continues
    /// at once.
    pub fn claimed(&mut self, next: String) {
        if next == "0-0" {
            self.next_claim = Instant::now() + self.claim_interval;
            self.scanned_this_interval = false;
        }
        self.claim_cursor = next;
    }

    /// Entries were refused for their content and stay pending: scan again a little later.
    pub fn retry_later(&mut self) {
        let at = Instant::now() + self.retry.next_delay();
        self.scan_due = Some(self.scan_due.map_or(at, |due| due.min(at)));
    }

    /// An outage ended, or the loop restarts reading: scan own entries first, from the start.
    pub fn scan_now(&mut self) {
        self.scanning = None;
        self.scan_due = Some(Instant::now());
    }

    /// When the next scheduled step is due, for a loop that has nothing to do before it.
    pub fn next_due(&self) -> Instant {
        self.scan_due
            .map_or(self.next_claim, |due| due.min(self.next_claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reclaim() -> Reclaim {
        Reclaim::new(Duration::from_secs(10), Duration::from_secs(5))
    }

    #[test]
    fn starts_with_a_scan_then_a_claim_then_new_entries() {
        let mut r = reclaim();
        assert_eq!(r.next(false), Next::Scan { after: "0".into() });
        r.scanned(Some("5-0".into()));
        assert_eq!(
            r.next(false),
            Next::Scan {
                after: "5-0".into()
            }
        );
        r.scanned(None);
        assert_eq!(
            r.next(false),
            Next::Claim {
                cursor: "0-0".into()
            }
        );
        r.claimed("7-0".into());
        assert_eq!(
            r.next(true),
            Next::Claim {
                cursor: "7-0".into()
            }
        );
        r.claimed("0-0".into());
        assert_eq!(r.next(true), Next::ReadNew);
        assert_eq!(r.next(false), Next::ReadNew);
    }

    #[test]
    fn a_due_scan_waits_for_the_batches_in_flight() {
        let mut r = reclaim();
        r.scan_now();
        assert_eq!(r.next(true), Next::Drain);
        assert_eq!(r.next(false), Next::Scan { after: "0".into() });
        // While a scan runs, it continues whatever is in flight: its own pages only.
        r.scanned(Some("3-0".into()));
        assert_eq!(
            r.next(true),
            Next::Scan {
                after: "3-0".into()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refused_entries_are_rescanned_after_a_growing_delay() {
        let mut r = reclaim();
        r.next(false);
        r.scanned(None);
        r.next(false);
        r.claimed("0-0".into());
        r.retry_later();
        assert_eq!(r.next(false), Next::ReadNew);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(r.next(false), Next::Scan { after: "0".into() });
        r.scanned(Some("4-0".into()));
        r.next(false);
        r.scanned(None);
        assert_eq!(r.next(false), Next::ReadNew);
        // The entry is still pending, so the second delay may be up to twice the first.
        r.retry_later();
        tokio::time::advance(Duration::from_millis(450)).await;
        assert_eq!(r.next(false), Next::Scan { after: "0".into() });
    }
}
