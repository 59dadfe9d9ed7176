//! How a watched run's progress is shown: a live bar when stderr is a terminal, otherwise one plain
//! line every few seconds and one at the end (never `\r`, so logs and pipes stay readable).
//!
//! Rate and ETA come from the run's own start and counts, not from when the watcher attached:
//! someone attaching to a run half done sees the run's rate, not "all rows done in no time".

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mixsync_proto::v1 as pb;

use crate::output::Output;
use crate::views::{self, millis};

/// How often a plain (non-terminal) watcher prints a line while the run goes on.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A run's speed and what is left, as far as it can be told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Estimate {
    /// Rows done per second since the run started; `None` before it started.
    pub(crate) rows_per_sec: Option<f64>,
    /// Seconds until every row is done; `None` while the total or the rate is unknown.
    pub(crate) eta_secs: Option<f64>,
}

/// Rate = `done` over the time from `started_ms` to `now_ms`; ETA = rows left at that rate.
/// `total` is the row count of the query, known only once extraction has finished.
pub(crate) fn estimate(
    started_ms: Option<i64>,
    now_ms: i64,
    done: u64,
    total: Option<u64>,
) -> Estimate {
    let rows_per_sec = started_ms
        .map(|start| (now_ms - start) as f64 / 1000.0)
        .filter(|&elapsed| elapsed > 0.0)
        .map(|elapsed| done as f64 / elapsed);
    let eta_secs = match (total, rows_per_sec) {
        (Some(total), _) if total <= done => Some(0.0),
        (Some(total), Some(rate)) if rate > 0.0 => Some((total - done) as f64 / rate),
        _ => None,
    };
    Estimate {
        rows_per_sec,
        eta_secs,
    }
}

/// `42s`, `3m07s`, `2h05m`: short enough for a progress line.
pub(crate) fn short_duration(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// Rows the run has finished with: loaded, skipped as unchanged, or failed.
fn done(counts: &pb::RunCounts) -> u64 {
    counts.skipped + counts.loaded + counts.failed
}

/// The moment the estimate is taken at: the run's end once it has one (so a finished run shows its
/// true rate however late it is watched), else when control observed this update (its clock, like
/// `started_at`, so a skewed client clock cannot bend the rate), else this machine's clock.
fn as_of(progress: &pb::RunProgress, run: &pb::Run) -> i64 {
    millis(run.finished_at.as_ref())
        .or_else(|| millis(progress.observed_at.as_ref()))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
}

/// What one update says, as text pieces: counts, `done N/TOTAL`, `R rows/s`, `ETA`.
struct Parts {
    counts: pb::RunCounts,
    done: String,
    rate: String,
    eta: String,
}

fn parts(progress: &pb::RunProgress, run: &pb::Run) -> Parts {
    let counts = run.counts.unwrap_or_default();
    let done = done(&counts);
    let e = estimate(
        millis(run.started_at.as_ref()),
        as_of(progress, run),
        done,
        progress.total_rows,
    );
    let of = progress
        .total_rows
        .map_or_else(|| "?".to_owned(), |t| t.to_string());
    Parts {
        counts,
        done: format!("{done}/{of}"),
        rate: e
            .rows_per_sec
            .map_or_else(|| "unknown".to_owned(), |r| format!("{r:.0} rows/s")),
        eta: e
            .eta_secs
            .map_or_else(|| "unknown".to_owned(), short_duration),
    }
}

/// The bar's message: what matters most first, since a narrow terminal cuts the end off.
fn bar_message(progress: &pb::RunProgress, run: &pb::Run) -> String {
    let p = parts(progress, run);
    format!(
        "{}  rate {}  eta {}  failed {}  extracted {}",
        p.done, p.rate, p.eta, p.counts.failed, p.counts.extracted
    )
}

/// One plain progress line, e.g.
/// `RUNNING extracted 8000  loaded 3500  skipped 0  failed 0  done 3500/8000  rate 1000 rows/s  eta 4s`.
pub(crate) fn line(progress: &pb::RunProgress) -> String {
    let run = progress.run.clone().unwrap_or_default();
    let p = parts(progress, &run);
    let c = p.counts;
    // From the second attempt on, say which attempt this is.
    let attempt = if run.attempt > 1 {
        format!(
            " (attempt {}/{})",
            run.attempt,
            run.max_attempts.max(run.attempt)
        )
    } else {
        String::new()
    };
    format!(
        "{}{attempt} extracted {}  loaded {}  skipped {}  failed {}  done {}  rate {}  eta {}",
        views::state_name(run.state),
        c.extracted,
        c.loaded,
        c.skipped,
        c.failed,
        p.done,
        p.rate,
        p.eta
    )
}

/// Decides when a plain watcher prints: the first update, then at most one every `every`, and the
/// last (terminal) one always.
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle { every, last: None }
    }

    /// Whether to print an update seen at `now`; `last` marks the run's final update.
    pub(crate) fn due(&mut self, now: Instant, last: bool) -> bool {
        let due = last
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= self.every);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// Where a watched run's progress goes (always stderr: stdout holds the report or the JSON).
pub(crate) enum Progress {
    /// A redrawn bar, for a person at a terminal.
    Bar(ProgressBar),
    /// Whole lines, for files, pipes and CI logs.
    Plain(Throttle),
    /// Nothing: JSON output is for scripts, which read the final document.
    Quiet,
}

impl Progress {
    pub(crate) fn new(output: Output) -> Progress {
        if output != Output::Text {
            return Progress::Quiet;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner_style());
            // The spinner keeps turning between updates, which only come when the counts change.
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            Progress::Plain(Throttle::new(PLAIN_EVERY))
        }
    }

    /// Shows one update from WatchRun (or the run read at the end).
    pub(crate) fn update(&mut self, progress: &pb::RunProgress) {
        let run = progress.run.clone().unwrap_or_default();
        let last = views::is_terminal(run.state);
        match self {
            Progress::Quiet => {}
            Progress::Plain(throttle) => {
                if throttle.due(Instant::now(), last) {
                    // One write per line so lines from elsewhere never land inside it.
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "{}", line(progress));
                    let _ = err.flush();
                }
            }
            Progress::Bar(bar) => {
                if let (Some(total), None) = (progress.total_rows, bar.length()) {
                    bar.set_length(total);
                    bar.set_style(bar_style());
                }
                bar.set_position(done(&run.counts.unwrap_or_default()));
                bar.set_prefix(views::state_name(run.state));
                bar.set_message(bar_message(progress, &run));
                if last {
                    // Leave the final state on screen above the report.
                    bar.finish();
                }
            }
        }
    }

    /// Prints a line about the watch itself (e.g. reconnecting) above the bar, on stderr.
    pub(crate) fn note(&self, message: &str) {
        match self {
            Progress::Bar(bar) => bar.println(message),
            Progress::Plain(_) | Progress::Quiet => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{message}");
                let _ = err.flush();
            }
        }
    }

    /// Stops drawing (a bar left by an interrupted watch stays on screen as it was).
    pub(crate) fn finish(&self) {
        match self {
            Progress::Bar(bar) if !bar.is_finished() => bar.abandon(),
            _ => {}
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} [{bar:20}] {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
        }
    }

    #[test]
    fn attaching_to_a_half_done_run_shows_the_runs_own_rate_and_eta() {
        // Started 60 s ago, 600k of 1.2M done: 10k rows/s, 60 s to go, whenever the watcher came.
        let start = 1_700_000_000_000;
        let e = estimate(Some(start), start + 60_000, 600_000, Some(1_200_000));
        assert_eq!(e.rows_per_sec, Some(10_000.0));
        assert_eq!(e.eta_secs, Some(60.0));
    }

    #[test]
    fn the_eta_is_unknown_until_the_total_is() {
        let e = estimate(Some(0), 10_000, 5_000, None);
        assert_eq!(e.rows_per_sec, Some(500.0));
        assert_eq!(e.eta_secs, None);
    }

    #[test]
    fn a_run_not_started_or_not_moving_has_no_rate_or_eta() {
        assert_eq!(
            estimate(None, 10_000, 0, Some(100)),
            Estimate {
                rows_per_sec: None,
                eta_secs: None
            }
        );
        // Started but nothing done yet: rate 0, and no ETA rather than an infinite one.
        let e = estimate(Some(0), 10_000, 0, Some(100));
        assert_eq!(e.rows_per_sec, Some(0.0));
        assert_eq!(e.eta_secs, None);
        // A clock behind the start (or the very same millisecond) gives no rate, not a negative one.
        assert_eq!(estimate(Some(10_000), 9_000, 5, None).rows_per_sec, None);
        assert_eq!(estimate(Some(10_000), 10_000, 5, None).rows_per_sec, None);
    }

    #[test]
    fn a_done_run_has_nothing_left() {
        let e = estimate(Some(0), 4_000, 100, Some(100));
        assert_eq!(e.rows_per_sec, Some(25.0));
        assert_eq!(e.eta_secs, Some(0.0));
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(0.4), "0s");
        assert_eq!(short_duration(59.0), "59s");
        assert_eq!(short_duration(60.0), "1m00s");
        assert_eq!(short_duration(187.0), "3m07s");
        assert_eq!(short_duration(7_500.0), "2h05m");
        assert_eq!(short_duration(-3.0), "0s");
    }

    #[test]
    fn a_line_uses_the_runs_start_and_the_observation_time() {
        let start = 1_700_000_000_000;
        let progress = pb::RunProgress {
            run: Some(pb::Run {
                state: pb::RunState::Running as i32,
                counts: Some(pb::RunCounts {
                    extracted: 1_200_000,
                    skipped: 100_000,
                    loaded: 490_000,
                    failed: 10_000,
                }),
                started_at: Some(ts(start)),
                ..Default::default()
            }),
            total_rows: Some(1_200_000),
            observed_at: Some(ts(start + 60_000)),
        };
        let text = line(&progress);
        assert_eq!(
            text,
            "RUNNING extracted 1200000  loaded 490000  skipped 100000  failed 10000  \
             done 600000/1200000  rate 10000 rows/s  eta 1m00s"
        );
        assert!(!text.contains('\r') && !text.contains('\n'));
    }

    #[test]
    fn a_finished_run_is_measured_to_its_end_not_to_when_it_was_watched() {
        let start = 1_700_000_000_000;
        let progress = pb::RunProgress {
            run: Some(pb::Run {
                state: pb::RunState::Succeeded as i32,
                counts: Some(pb::RunCounts {
                    extracted: 300,
                    loaded: 300,
                    ..Default::default()
                }),
                started_at: Some(ts(start)),
                finished_at: Some(ts(start + 3_000)),
                ..Default::default()
            }),
            total_rows: Some(300),
            // Watched an hour after it ended.
            observed_at: Some(ts(start + 3_600_000)),
        };
        let text = line(&progress);
        assert!(text.starts_with("SUCCEEDED "), "{text}");
        assert!(text.contains("rate 100 rows/s  eta 0s"), "{text}");
    }

    #[test]
    fn a_queued_run_says_unknown() {
        let progress = pb::RunProgress {
            run: Some(pb::Run {
                state: pb::RunState::Queued as i32,
                ..Default::default()
            }),
            total_rows: None,
            observed_at: Some(ts(1_000)),
        };
        assert_eq!(
            line(&progress),
            "QUEUED extracted 0  loaded 0  skipped 0  failed 0  done 0/?  rate unknown  eta unknown"
        );
    }

    #[test]
    fn plain_lines_come_first_then_every_few_seconds_and_always_last() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(5));
        assert!(throttle.due(t0, false), "the first update is shown");
        assert!(!throttle.due(t0 + Duration::from_secs(1), false));
        assert!(!throttle.due(t0 + Duration::from_millis(4_999), false));
        assert!(throttle.due(t0 + Duration::from_secs(5), false));
        assert!(!throttle.due(t0 + Duration::from_secs(6), false));
        assert!(
            throttle.due(t0 + Duration::from_secs(7), true),
            "the last update is always shown"
        );
    }
}
