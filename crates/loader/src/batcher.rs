//! Groups records into requests by count and by uncompressed bytes, with a linger time so a trickle
//! of records still goes out promptly. Pure: the caller supplies the clock.

use std::time::{Duration, Instant};

/// How large one request may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many records per request.
    pub max_records: usize,
    /// At most this many bytes per request, as the sum of the items' sizes. A single item larger
    /// than this goes out alone (the server then decides).
    pub max_bytes: usize,
}

/// One open batch for one destination.
#[derive(Debug)]
pub struct Batcher<T> {
    limits: BatchLimits,
    linger: Duration,
    items: Vec<T>,
    bytes: usize,
    opened: Option<Instant>,
}

impl<T> Batcher<T> {
    /// An empty batcher. Limits of 0 are treated as 1.
    pub fn new(limits: BatchLimits, linger: Duration) -> Self {
        Batcher {
            limits: BatchLimits {
                max_records: limits.max_records.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            linger,
            items: Vec::new(),
            bytes: 0,
            opened: None,
        }
    }

    /// Adds `item` of `size` bytes at time `now` and returns the batches that are complete: the open
    /// batch when `item` does not fit in it, and the new one when it is full (by count, by bytes, or
    /// because `item` alone fills it). At most two batches.
    pub fn push(&mut self, item: T, size: usize, now: Instant) -> Vec<Vec<T>> {
        let mut done = Vec::new();
        if !self.items.is_empty() && self.bytes.saturating_add(size) > self.limits.max_bytes {
            done.extend(self.take());
        }
        if self.items.is_empty() {
            self.opened = Some(now);
        }
        self.items.push(item);
        self.bytes = self.bytes.saturating_add(size);
        if self.items.len() >= self.limits.max_records || self.bytes >= self.limits.max_bytes {
            done.extend(self.take());
        }
        done
    }

    /// When the open batch must go out even if it is not full; `None` when nothing is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + self.linger)
    }

    /// Closes the open batch, if any.
    pub fn take(&mut self) -> Option<Vec<T>> {
        self.opened = None;
        self.bytes = 0;
        (!self.items.is_empty()).then(|| std::mem::take(&mut self.items))
    }

    /// Records in the open batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No open batch.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(max_records: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_records,
            max_bytes,
        }
    }

    #[test]
    fn closes_on_count() {
        let now = Instant::now();
        let mut b = Batcher::new(limits(3, 1000), Duration::from_millis(200));
        assert!(b.push(1, 10, now).is_empty());
        assert!(b.push(2, 10, now).is_empty());
        assert_eq!(b.push(3, 10, now), vec![vec![1, 2, 3]]);
        assert!(b.is_empty());
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn closes_before_an_item_that_does_not_fit() {
        let now = Instant::now();
        let mut b = Batcher::new(limits(100, 100), Duration::from_millis(200));
        assert!(b.push("a", 60, now).is_empty());
        assert_eq!(b.push("b", 60, now), vec![vec!["a"]]);
        assert_eq!(b.len(), 1);
        assert_eq!(b.push("c", 40, now), vec![vec!["b", "c"]]);
    }

    #[test]
    fn an_oversized_item_goes_alone() {
        let now = Instant::now();
        let mut b = Batcher::new(limits(100, 100), Duration::from_millis(200));
        assert!(b.push("a", 10, now).is_empty());
        assert_eq!(b.push("big", 500, now), vec![vec!["a"], vec!["big"]]);
        assert!(b.is_empty());
    }

    #[test]
    fn linger_starts_with_the_first_item() {
        let start = Instant::now();
        let linger = Duration::from_millis(200);
        let mut b = Batcher::new(limits(100, 1000), linger);
        b.push(1, 1, start);
        b.push(2, 1, start + Duration::from_millis(150));
        assert_eq!(b.deadline(), Some(start + linger));
        assert_eq!(b.take(), Some(vec![1, 2]));
        assert_eq!(b.take(), None);
    }

    proptest! {
        #[test]
        fn batches_never_exceed_the_limits_and_keep_every_item_in_order(
            max_records in 1usize..50,
            max_bytes in 1usize..5_000,
            sizes in proptest::collection::vec(0usize..1_000, 0..400),
        ) {
            let now = Instant::now();
            let mut b = Batcher::new(limits(max_records, max_bytes), Duration::from_millis(1));
            let mut batches = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                batches.extend(b.push((i, *size), *size, now));
                prop_assert!(b.len() < max_records);
            }
            batches.extend(b.take());
            for batch in &batches {
                prop_assert!(!batch.is_empty());
                prop_assert!(batch.len() <= max_records);
                let bytes: usize = batch.iter().map(|(_, s)| s).sum();
                prop_assert!(bytes <= max_bytes || batch.len() == 1, "{} bytes in {} items", bytes, batch.len());
            }
            let order: Vec<usize> = batches.iter().flatten().map(|(i, _)| *i).collect();
            prop_assert_eq!(order, (0..sizes.len()).collect::<Vec<_>>());
        }
    }
}
