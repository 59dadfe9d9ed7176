//! Epoch numbers in seconds or milliseconds (docs/mixpanel-api.md §1.6).

use super::SECONDS_MS_THRESHOLD;

/// Converts an epoch number to milliseconds, telling seconds from milliseconds by magnitude: at or
/// above [`SECONDS_MS_THRESHOLD`] it is milliseconds and returned as is, below it is seconds.
///
/// Negative numbers are converted as seconds too; checking the accepted window is the caller's job.
/// Returns `None` only when seconds × 1000 overflows `i64`.
pub fn epoch_to_ms(v: i64) -> Option<i64> {
    if v >= SECONDS_MS_THRESHOLD {
        Some(v)
    } else {
        v.checked_mul(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_decides_the_unit() {
        assert_eq!(epoch_to_ms(1_700_000_000), Some(1_700_000_000_000));
        assert_eq!(epoch_to_ms(1_700_000_000_000), Some(1_700_000_000_000));
        assert_eq!(
            epoch_to_ms(SECONDS_MS_THRESHOLD - 1),
            Some(9_999_999_999_000)
        );
        assert_eq!(
            epoch_to_ms(SECONDS_MS_THRESHOLD),
            Some(SECONDS_MS_THRESHOLD)
        );
        assert_eq!(epoch_to_ms(0), Some(0));
        assert_eq!(epoch_to_ms(-5), Some(-5000));
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(epoch_to_ms(i64::MIN), None);
        assert_eq!(epoch_to_ms(i64::MIN / 1000 - 1), None);
        assert_eq!(epoch_to_ms(i64::MIN / 1000), Some(i64::MIN / 1000 * 1000));
        assert_eq!(epoch_to_ms(i64::MAX), Some(i64::MAX));
    }
}
