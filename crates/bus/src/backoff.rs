use std::time::Duration;

/// Exponential backoff with jitter: 100 ms doubling to 5 s, each delay drawn from the upper
/// half of the current step so replicas do not retry in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    step: Duration,
}

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(100);
    pub(crate) const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Self { step: Self::FIRST }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(Self::MAX);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn it_starts_small_and_reaches_the_cap() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first >= Backoff::FIRST / 2 && first <= Backoff::FIRST);
        let late = (0..20).map(|_| backoff.next_delay()).last().unwrap();
        assert!(late >= Backoff::MAX / 2 && late <= Backoff::MAX, "{late:?}");
    }

    proptest! {
        #[test]
        fn every_delay_is_within_bounds(attempts in 1usize..64) {
            let mut backoff = Backoff::new();
            for _ in 0..attempts {
                let delay = backoff.next_delay();
                prop_assert!(delay >= Backoff::FIRST / 2);
                prop_assert!(delay <= Backoff::MAX);
            }
        }
    }
}
