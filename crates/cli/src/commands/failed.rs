//! `mixsync failed …`: failed records of a run, grouped by reason; one in full; replays.

use clap::Subcommand;
use mixsync_proto::v1 as pb;
use serde::Serialize;

use super::run::follow;
use crate::client::{Control, status_error};
use crate::output::{Output, table};
use crate::views::{self, FailedRecord, Run};

#[derive(Debug, Subcommand)]
pub(crate) enum FailedCommand {
    /// Lists a run's failed records, grouped by reason with an example of each.
    List {
        /// Run id.
        run_id: String,
    },
    /// Shows one failed record in full, its row as JSON.
    Show {
        /// Failed record id.
        id: String,
    },
    /// Sends a run's failed records again (re-mapped with the activation's current mapping) in a
    /// new run.
    Replay {
        /// Run id.
        run_id: String,
        /// Follow the replay run until it ends and print its report.
        #[arg(long)]
        watch: bool,
    },
    /// Lists dead letters: messages no service could handle (undecodable, unknown run, refused
    /// by control), kept raw with their headers, newest first.
    DeadLetters {
        /// Only those of this run.
        #[arg(long)]
        run: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// A dead letter as listed.
#[derive(Serialize)]
struct DeadLetter {
    id: String,
    received_at: String,
    queue: String,
    stage: &'static str,
    run_id: String,
    batch_id: String,
    reason: String,
    failed_records: u64,
    bytes: usize,
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct DeadLetters {
    total_count: u64,
    dead_letters: Vec<DeadLetter>,
}

impl From<&pb::DeadLetterEntry> for DeadLetter {
    fn from(d: &pb::DeadLetterEntry) -> Self {
        Self {
            id: d.id.clone(),
            received_at: views::time(d.received_at.as_ref()),
            queue: d.queue.clone(),
            stage: views::stage_name(d.stage),
            run_id: d.run_id.clone(),
            batch_id: d.batch_id.clone(),
            reason: d.reason.clone(),
            failed_records: d.failed_records,
            bytes: d.original.len(),
            headers: d.headers.clone().into_iter().collect(),
        }
    }
}

fn dead_letters_text(d: &DeadLetters) -> String {
    if d.dead_letters.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let rows: Vec<Vec<String>> = d
        .dead_letters
        .iter()
        .map(|l| {
            vec![
                l.received_at.clone(),
                l.queue.clone(),
                l.stage.to_owned(),
                l.run_id.clone(),
                l.failed_records.to_string(),
                l.bytes.to_string(),
                shorten(&l.reason, 70),
            ]
        })
        .collect();
    let shown = if d.total_count as usize > rows.len() {
        format!(" (newest {} shown)", rows.len())
    } else {
        String::new()
    };
    format!(
        "{} dead letters{shown}\n{}",
        d.total_count,
        table(
            &[
                "RECEIVED",
                "QUEUE",
                "STAGE",
                "RUN",
                "FAILED RECORDS",
                "BYTES",
                "REASON"
            ],
            &rows
        )
    )
}

/// One reason, with how many records share it and an example.
#[derive(Serialize)]
struct Reason {
    stage: &'static str,
    field: String,
    rule: String,
    count: u64,
    example_record_id: String,
    example_row_number: u64,
    example_message: String,
}

#[derive(Serialize)]
struct Listing {
    run_id: String,
    total_count: u64,
    reasons: Vec<Reason>,
}

/// A run's counts by reason, each with an example: one small request for the counts and one
/// per reason, however many records the run has.
async fn reasons(control: &mut Control, run_id: &str) -> anyhow::Result<Listing> {
    let counts = control
        .list_failed_records(pb::ListFailedRecordsRequest {
            run_id: run_id.to_owned(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut examples = Vec::with_capacity(counts.counts_by_reason.len());
    for reason in &counts.counts_by_reason {
        // An empty field is no filter: look a little further for a record of that reason.
        let page_size = if reason.field.is_empty() { 100 } else { 1 };
        let page = control
            .list_failed_records(pb::ListFailedRecordsRequest {
                run_id: run_id.to_owned(),
                stage: reason.stage,
                field: reason.field.clone(),
                rule: reason.rule.clone(),
                page_size,
                ..Default::default()
            })
            .await
            .map_err(status_error)?
            .into_inner();
        examples.extend(page.records);
    }
    Ok(listing(
        run_id,
        &examples,
        &counts.counts_by_reason,
        counts.total_count,
    ))
}

/// The listing: each reason with its count and the first of `examples` that has it.
fn listing(
    run_id: &str,
    records: &[pb::FailedRecord],
    counts: &[pb::FailureReasonCount],
    total: u64,
) -> Listing {
    let reasons = counts
        .iter()
        .map(|c| {
            let example = records
                .iter()
                .find(|r| r.stage == c.stage && r.field == c.field && r.rule == c.rule);
            Reason {
                stage: views::stage_name(c.stage),
                field: c.field.clone(),
                rule: c.rule.clone(),
                count: c.count,
                example_record_id: example.map(|r| r.id.clone()).unwrap_or_default(),
                example_row_number: example.map_or(0, |r| r.row_number),
                example_message: example.map(|r| r.message.clone()).unwrap_or_default(),
            }
        })
        .collect();
    Listing {
        run_id: run_id.to_owned(),
        total_count: total,
        reasons,
    }
}

fn listing_text(l: &Listing) -> String {
    if l.reasons.is_empty() {
        return format!("run {} has no failed records\n", l.run_id);
    }
    let rows: Vec<Vec<String>> = l
        .reasons
        .iter()
        .map(|r| {
            vec![
                r.count.to_string(),
                r.stage.to_owned(),
                r.field.clone(),
                r.rule.clone(),
                r.example_record_id.clone(),
                shorten(&r.example_message, 80),
            ]
        })
        .collect();
    format!(
        "{} failed records in run {}\n{}",
        l.total_count,
        l.run_id,
        table(
            &[
                "COUNT",
                "STAGE",
                "FIELD",
                "RULE",
                "EXAMPLE ID",
                "EXAMPLE MESSAGE"
            ],
            &rows
        )
    )
}

fn shorten(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One failed record with everything it carries.
#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    record: FailedRecord,
    activation_id: String,
    batch_id: String,
    key: String,
    replayed_by_run_id: String,
    row: serde_json::Value,
}

fn detail_text(d: &Detail) -> String {
    let r = &d.record;
    let mut out = format!(
        "failed record {}\n  run:        {}\n  activation: {}\n  batch:      {}\n  row number: {}\n  stage:      {}\n  field:      {}\n  rule:       {}\n  message:    {}\n",
        r.id,
        r.run_id,
        d.activation_id,
        d.batch_id,
        r.row_number,
        r.stage,
        r.field,
        r.rule,
        r.message
    );
    if !d.key.is_empty() {
        out.push_str(&format!("  key:        {}\n", d.key));
    }
    if !d.replayed_by_run_id.is_empty() {
        out.push_str(&format!("  replayed by run {}\n", d.replayed_by_run_id));
    }
    let row = serde_json::to_string_pretty(&d.row).unwrap_or_default();
    out.push_str(&format!("  row:\n{}\n", indent(&row)));
    if !r.record_json.is_empty() {
        let record = serde_json::from_str::<serde_json::Value>(&r.record_json)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| r.record_json.clone());
        out.push_str(&format!("  record:\n{}\n", indent(&record)));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn struct_json(s: Option<&prost_types::Struct>) -> serde_json::Value {
    s.map_or(serde_json::Value::Object(serde_json::Map::new()), |s| {
        serde_json::Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        )
    })
}

fn value_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_json(Some(s)),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_json).collect())
        }
    }
}

pub(crate) async fn run(
    mut control: Control,
    output: Output,
    command: FailedCommand,
) -> anyhow::Result<()> {
    match command {
        FailedCommand::List { run_id } => {
            let l = reasons(&mut control, &run_id).await?;
            output.print(&l, || listing_text(&l));
        }
        FailedCommand::DeadLetters { run, limit } => {
            let page = control
                .list_dead_letters(pb::ListDeadLettersRequest {
                    run_id: run.unwrap_or_default(),
                    page_size: limit.clamp(1, 1000),
                    page_token: String::new(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let d = DeadLetters {
                total_count: page.total_count,
                dead_letters: page.dead_letters.iter().map(DeadLetter::from).collect(),
            };
            output.print(&d, || dead_letters_text(&d));
        }
        FailedCommand::Show { id } => {
            let record = control
                .get_failed_record(pb::GetFailedRecordRequest { id })
                .await
                .map_err(status_error)?
                .into_inner()
                .record
                .unwrap_or_default();
            let d = Detail {
                record: FailedRecord::from(&record),
                activation_id: record.activation_id.clone(),
                batch_id: record.batch_id.clone(),
                key: record.key.clone(),
                replayed_by_run_id: record.replayed_by_run_id.clone(),
                row: struct_json(record.row.as_ref()),
            };
            output.print(&d, || detail_text(&d));
        }
        FailedCommand::Replay { run_id, watch } => {
            let response = control
                .replay_failed_records(pb::ReplayFailedRecordsRequest {
                    selection: Some(pb::replay_failed_records_request::Selection::RunId(
                        run_id.clone(),
                    )),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let run = response.run.unwrap_or_default();
            if watch {
                let last = follow(&mut control, &run.id, output).await?;
                let view = Run::from(&last);
                output.print(&view, || view.report());
                return match pb::RunState::try_from(last.state) {
                    Ok(pb::RunState::Succeeded) => Ok(()),
                    _ => anyhow::bail!("replay run {} ended {}", last.id, view.state),
                };
            }
            let view = Run::from(&run);
            output.print(&view, || {
                format!(
                    "replaying {} failed records of run {run_id} in run {} ({})\n",
                    response.record_count, view.id, view.state
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_shortened_to_one_line() {
        assert_eq!(shorten("abc\ndef", 10), "abc");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn dead_letters_are_listed_with_their_reason() {
        let entry = pb::DeadLetterEntry {
            id: "d1".into(),
            queue: "mixsync.rows".into(),
            stage: pb::Stage::Map as i32,
            reason: "cannot decode RowBatch: invalid wire type".into(),
            original: vec![0xff; 12],
            ..Default::default()
        };
        let d = DeadLetters {
            total_count: 3,
            dead_letters: vec![DeadLetter::from(&entry)],
        };
        let text = dead_letters_text(&d);
        assert!(
            text.starts_with("3 dead letters (newest 1 shown)"),
            "{text}"
        );
        assert!(
            text.contains("mixsync.rows") && text.contains("cannot decode RowBatch"),
            "{text}"
        );
        assert!(text.contains("12"), "{text}");
        let empty = DeadLetters {
            total_count: 0,
            dead_letters: Vec::new(),
        };
        assert_eq!(dead_letters_text(&empty), "no dead letters\n");
    }

    #[test]
    fn reasons_carry_an_example() {
        let record = pb::FailedRecord {
            id: "f1".into(),
            stage: pb::Stage::Map as i32,
            field: "time".into(),
            rule: "required".into(),
            message: "row 3: no time".into(),
            row_number: 3,
            ..Default::default()
        };
        let count = pb::FailureReasonCount {
            stage: pb::Stage::Map as i32,
            field: "time".into(),
            rule: "required".into(),
            count: 7,
        };
        let l = listing("r1", &[record], &[count], 7);
        assert_eq!(l.reasons[0].example_record_id, "f1");
        let text = listing_text(&l);
        assert!(text.contains("7 failed records in run r1"), "{text}");
        assert!(text.contains("row 3: no time"), "{text}");
    }
}
