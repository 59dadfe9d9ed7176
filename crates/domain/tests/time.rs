//! Property tests for event times and the accepted window.

use mixsync_domain::EventTime;
use mixsync_domain::rules::{MAX_FUTURE_MS, MIN_EVENT_TIME_MS, SECONDS_MS_THRESHOLD};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn seconds_and_milliseconds_agree(s in (MIN_EVENT_TIME_MS / 1000)..SECONDS_MS_THRESHOLD) {
        let from_s = EventTime::from_epoch(s).unwrap();
        prop_assert_eq!(from_s, EventTime::from_epoch(s * 1000).unwrap());
        prop_assert_eq!(from_s.as_millis(), s * 1000);
    }

    #[test]
    fn milliseconds_are_kept(ms in SECONDS_MS_THRESHOLD..i64::MAX) {
        prop_assert_eq!(EventTime::from_epoch(ms).unwrap(), EventTime::from_millis(ms));
    }

    #[test]
    fn whole_floats_read_like_integers(v in -1_000_000_000_000i64..(1i64 << 53)) {
        prop_assert_eq!(EventTime::from_epoch_f64(v as f64), EventTime::from_epoch(v));
    }

    #[test]
    fn any_finite_float_converts_or_errors_without_panicking(v in any::<f64>()) {
        let _ = EventTime::from_epoch_f64(v);
    }

    #[test]
    fn window_is_1971_to_an_hour_from_now(ms in any::<i64>(), now in MIN_EVENT_TIME_MS..(1i64 << 50)) {
        let inside = (MIN_EVENT_TIME_MS..=now + MAX_FUTURE_MS).contains(&ms);
        prop_assert_eq!(EventTime::from_millis(ms).check_window(now).is_ok(), inside);
    }

    #[test]
    fn display_parses_back(ms in -62_135_596_800_000i64..253_402_300_800_000) {
        let text = EventTime::from_millis(ms).to_string();
        prop_assert_eq!(mixsync_domain::civil::parse_datetime(&text), Some(ms), "{}", text);
    }
}
