//! Groups records into requests by count and by uncompressed bytes, with a linger time so a trickle
//! of records still goes out promptly. Pure: the caller supplies the clock.
//!
//! The count is of *units*, which an item may hold several of: an event is one unit of `/import`,
//! while a profile record is as many units as it has update objects (Mixpanel's limit on `/engage`
//! and `/groups` counts updates). An item is never split: its units travel in one request.

use std::time::{Duration, Instant};

/// How large one request may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many units per request (events, or profile update objects), as the sum of the
    /// items' units. A single item with more goes out alone (the server then decides).
    pub max_units: usize,
    /// At most this many bytes per request, as the sum of the items' sizes. A single item larger
    /// than this goes out alone (the server then decides).
    pub max_bytes: usize,
}

/// What one item adds to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSize {
    /// Units counted by [`BatchLimits::max_units`]: 1 for an event, the number of update objects
    /// for a profile record.
    pub units: usize,
    /// Body bytes, framing included, counted by [`BatchLimits::max_bytes`].
    pub bytes: usize,
}

/// One open batch for one destination.
#[derive(Debug)]
pub struct Batcher<T> {
    limits: BatchLimits,
    linger: Duration,
    items: Vec<T>,
    units: usize,
    bytes: usize,
    opened: Option<Instant>,
}

impl<T> Batcher<T> {
    /// An empty batcher. Limits of 0 are treated as 1.
    pub fn new(limits: BatchLimits, linger: Duration) -> Self {
        Batcher {
            limits: BatchLimits {
                max_units: limits.max_units.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            linger,
            items: Vec::new(),
            units: 0,
            bytes: 0,
            opened: None,
        }
    }

    /// Adds `item` of `size` at time `now` and returns the batches that are complete: the open
    /// batch when `item` does not fit in it, and the new one when it is full (by units, by bytes, or
    /// because `item` alone fills it). At most two batches.
    pub fn push(&mut self, item: T, size: RecordSize, now: Instant) -> Vec<Vec<T>> {
        let mut done = Vec::new();
        if !self.items.is_empty()
            && (self.units.saturating_add(size.units) > self.limits.max_units
                || self.bytes.saturating_add(size.bytes) > self.limits.max_bytes)
        {
            done.extend(self.take());
        }
        if self.items.is_empty() {
            self.opened = Some(now);
        }
        self.items.push(item);
        self.units = self.units.saturating_add(size.units);
        self.bytes = self.bytes.saturating_add(size.bytes);
        if self.units >= self.limits.max_units || self.bytes >= self.limits.max_bytes {
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
        self.units = 0;
        self.bytes = 0;
        (!self.items.is_empty()).then(|| std::mem::take(&mut self.items))
    }

    /// Items in the open batch.
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

    fn limits(max_units: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_units,
            max_bytes,
        }
    }

    /// One unit of `bytes` bytes (an event).
    fn b(bytes: usize) -> RecordSize {
        RecordSize { units: 1, bytes }
    }

    fn u(units: usize) -> RecordSize {
        RecordSize { units, bytes: 10 }
    }

    #[test]
    fn closes_on_count() {
        let now = Instant::now();
        let mut b3 = Batcher::new(limits(3, 1000), Duration::from_millis(200));
        assert!(b3.push(1, b(10), now).is_empty());
        assert!(b3.push(2, b(10), now).is_empty());
        assert_eq!(b3.push(3, b(10), now), vec![vec![1, 2, 3]]);
        assert!(b3.is_empty());
        assert_eq!(b3.deadline(), None);
    }

    #[test]
    fn closes_before_an_item_that_does_not_fit() {
        let now = Instant::now();
        let mut batcher = Batcher::new(limits(100, 100), Duration::from_millis(200));
        assert!(batcher.push("a", b(60), now).is_empty());
        assert_eq!(batcher.push("b", b(60), now), vec![vec!["a"]]);
        assert_eq!(batcher.len(), 1);
        assert_eq!(batcher.push("c", b(40), now), vec![vec!["b", "c"]]);
    }

    #[test]
    fn an_oversized_item_goes_alone() {
        let now = Instant::now();
        let mut batcher = Batcher::new(limits(100, 100), Duration::from_millis(200));
        assert!(batcher.push("a", b(10), now).is_empty());
        assert_eq!(
            batcher.push("big", b(500), now),
            vec![vec!["a"], vec!["big"]]
        );
        assert!(batcher.is_empty());
    }

    #[test]
    fn units_are_counted_and_an_item_never_splits() {
        let now = Instant::now();
        let mut batcher = Batcher::new(limits(10, 10_000), Duration::from_millis(200));
        // 3 + 5 = 8 units; 2 more would fit, 3 do not: the open batch closes before them.
        assert!(batcher.push("a", u(3), now).is_empty());
        assert!(batcher.push("b", u(5), now).is_empty());
        assert_eq!(batcher.push("c", u(3), now), vec![vec!["a", "b"]]);
        // 3 + 7 = 10: full.
        assert_eq!(batcher.push("d", u(7), now), vec![vec!["c", "d"]]);
        // More units than a request takes: alone.
        assert!(batcher.push("e", u(1), now).is_empty());
        assert_eq!(batcher.push("f", u(12), now), vec![vec!["e"], vec!["f"]]);
        assert!(batcher.is_empty());
    }

    #[test]
    fn linger_starts_with_the_first_item() {
        let start = Instant::now();
        let linger = Duration::from_millis(200);
        let mut batcher = Batcher::new(limits(100, 1000), linger);
        batcher.push(1, b(1), start);
        batcher.push(2, b(1), start + Duration::from_millis(150));
        assert_eq!(batcher.deadline(), Some(start + linger));
        assert_eq!(batcher.take(), Some(vec![1, 2]));
        assert_eq!(batcher.take(), None);
    }

    proptest! {
        #[test]
        fn batches_respect_units_and_bytes_keep_items_whole_and_in_order_and_are_full(
            max_units in 1usize..50,
            max_bytes in 1usize..5_000,
            sizes in proptest::collection::vec((1usize..8, 0usize..1_000), 0..400),
        ) {
            let now = Instant::now();
            let mut batcher = Batcher::new(limits(max_units, max_bytes), Duration::from_millis(1));
            let mut batches = Vec::new();
            for (i, (units, bytes)) in sizes.iter().enumerate() {
                let size = RecordSize { units: *units, bytes: *bytes };
                batches.extend(batcher.push((i, size), size, now));
                prop_assert!(batcher.is_empty() || batcher.units < max_units);
            }
            batches.extend(batcher.take());
            let units = |batch: &[(usize, RecordSize)]| batch.iter().map(|(_, s)| s.units).sum::<usize>();
            let bytes = |batch: &[(usize, RecordSize)]| batch.iter().map(|(_, s)| s.bytes).sum::<usize>();
            for batch in &batches {
                prop_assert!(!batch.is_empty());
                // Within the limits, unless one item alone is over them.
                prop_assert!(units(batch) <= max_units || batch.len() == 1, "{} units in {} items", units(batch), batch.len());
                prop_assert!(bytes(batch) <= max_bytes || batch.len() == 1, "{} bytes in {} items", bytes(batch), batch.len());
            }
            // No request is cut short: each one closed because it was full or the next item did
            // not fit.
            for pair in batches.windows(2) {
                let (done, next) = (&pair[0], pair[1][0].1);
                prop_assert!(
                    units(done) >= max_units
                        || bytes(done) >= max_bytes
                        || units(done) + next.units > max_units
                        || bytes(done) + next.bytes > max_bytes
                );
            }
            // Every item exactly once, in order (an item, whatever its units, is in one batch).
            let order: Vec<usize> = batches.iter().flatten().map(|(i, _)| *i).collect();
            prop_assert_eq!(order, (0..sizes.len()).collect::<Vec<_>>());
        }
    }
}
