//! What `mixsync run … --watch` and `mixsync run watch` print when nobody is at a terminal: whole
//! progress lines (never `\r`), and a rate taken from the run's own start, so attaching to a run
//! half done shows the run's rate.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mixsync_e2e::*;
use mixsync_proto::v1 as pb;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// `mixsync ARGS` against this world's control, with stdout and stderr piped (not a terminal).
fn mixsync(world: &World, args: &[&str]) -> anyhow::Result<Command> {
    let mut command = Command::new(binary()?);
    command
        .args(args)
        .env(
            "MIXSYNC_SERVER",
            format!("http://127.0.0.1:{}", world.grpc_port),
        )
        .env("MIXSYNC_API_TOKEN", &world.token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(command)
}

/// `events(id, user_id, event, ts)` with `rows` rows.
async fn seed(world: &mut World, rows: i64) -> anyhow::Result<()> {
    world
        .warehouse()
        .await?
        .execute(
            "CREATE TABLE events AS
             SELECT g AS id, 'user-' || (g % 50) AS user_id, 'Page Viewed' AS event, 1700000000 + g AS ts
             FROM generate_series(1::bigint, $1::bigint) AS g",
            &[&rows],
        )
        .await?;
    Ok(())
}

/// The progress lines among a watcher's stderr: those starting with a run state.
fn progress_lines(stderr: &str) -> Vec<&str> {
    const STATES: [&str; 6] = [
        "QUEUED ",
        "RUNNING ",
        "SUCCEEDED ",
        "PARTIALLY_FAILED ",
        "FAILED ",
        "CANCELLED ",
    ];
    stderr
        .lines()
        .filter(|l| STATES.iter().any(|s| l.starts_with(s)))
        .collect()
}

/// The `rate N rows/s` of a progress line; `None` for `rate unknown`.
fn rate(line: &str) -> Option<f64> {
    let (_, after) = line.split_once(" rate ")?;
    let mut words = after.split_whitespace();
    let number = words.next()?.parse().ok()?;
    (words.next() == Some("rows/s")).then_some(number)
}

/// Rows a run is done with.
fn done(run: &pb::Run) -> u64 {
    let c = counts(run);
    c.skipped + c.loaded + c.failed
}

fn seconds(ts: Option<&prost_types::Timestamp>) -> anyhow::Result<f64> {
    let ts = ts.context("timestamp unset")?;
    Ok(ts.seconds as f64 + f64::from(ts.nanos) / 1e9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_into_a_pipe_prints_whole_lines_and_the_report() -> anyhow::Result<()> {
    let mut world = World::new("watch-pipe").await?;
    seed(&mut world, 300).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    events_activation(
        &mut control,
        "piped",
        &wh,
        &target,
        "SELECT * FROM events ORDER BY id",
        &[],
    )
    .await?;

    let output = mixsync(&world, &["run", "start", "piped", "--watch"])?
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    assert!(
        !stdout.contains('\r') && !stderr.contains('\r'),
        "no carriage return into a pipe:\nstdout: {stdout:?}\nstderr: {stderr:?}"
    );
    // Whole lines: the first update as soon as it comes, the last one always.
    let lines = progress_lines(&stderr);
    assert!(!lines.is_empty(), "no progress line in {stderr:?}");
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("SUCCEEDED ") && last.contains("done 300/300"),
        "the last line is the end of the run: {stderr}"
    );
    assert!(rate(last).is_some_and(|r| r > 0.0), "{last}");
    // The report goes to stdout, apart from the progress.
    let report = stdout.lines().next().unwrap_or_default();
    assert!(
        report.starts_with("run ") && report.contains("SUCCEEDED"),
        "{stdout}"
    );
    assert!(stdout.contains("loaded 300"), "{stdout}");
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaching_to_a_half_done_run_reports_the_runs_own_rate() -> anyhow::Result<()> {
    const ROWS: u64 = 12_000;
    let mut world = World::new("watch-attach").await?;
    seed(&mut world, ROWS as i64).await?;
    // The target's cap makes the run last about 8 s at a steady pace, long enough to attach half
    // way, whatever the machine's load (which only ever slows it below this bound).
    world.env.extend([(
        "MIXSYNC_LOADER_MAX_BATCH_EVENTS".to_owned(),
        "250".to_owned(),
    )]);
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    cap_emulator_target(&world, &mut control, &target, 1_500).await?;
    let activation = events_activation(
        &mut control,
        "attached",
        &wh,
        &target,
        "SELECT * FROM events ORDER BY id",
        &[],
    )
    .await?;
    let run = control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: activation.id,
            full_resync: false,
        })
        .await?
        .into_inner()
        .run
        .context("no run")?;

    // Wait on the counts until the run is half done (still going).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let now = get_run(&mut control, &run.id).await?;
        if is_terminal(now.state) {
            bail!("the run ended before it could be attached to half way: {now:?}");
        }
        if done(&now) >= ROWS / 2 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the run did not get half way in time: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut watcher = mixsync(&world, &["run", "watch", &run.id])?.spawn()?;
    let mut stderr = BufReader::new(watcher.stderr.take().context("stderr")?).lines();
    let mut seen = Vec::new();
    let mut first = None;
    while let Some(line) = stderr.next_line().await? {
        if first.is_none() && !progress_lines(&line).is_empty() {
            first = Some(line.clone());
        }
        seen.push(line);
    }
    let status = watcher.wait().await?;
    let all = seen.join("\n");
    assert!(status.success(), "{status}: {all}");
    let first = first.with_context(|| format!("no progress line in {all:?}"))?;
    assert!(
        first.starts_with("RUNNING "),
        "attached while running: {first}"
    );
    let reported = rate(&first).with_context(|| format!("no rate in {first:?}"))?;

    let end = get_run(&mut control, &run.id).await?;
    assert_eq!(done(&end), ROWS, "{end:?}");
    let took = seconds(end.finished_at.as_ref())? - seconds(end.started_at.as_ref())?;
    let true_rate = ROWS as f64 / took;
    assert!(
        (reported - true_rate).abs() <= 0.2 * true_rate,
        "attached at half way, the watcher reported {reported:.0} rows/s; the run's true rate was \
         {true_rate:.0} rows/s ({ROWS} rows in {took:.2}s)\n{all}"
    );
    world.cleanup().await;
    Ok(())
}
