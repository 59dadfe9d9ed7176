//! What the client commands print: stable, serializable views of the API's resources (never a secret).

use mixsync_domain::civil::format_datetime_millis;
use mixsync_proto::v1 as pb;
use serde::Serialize;

/// RFC 3339 text of a protobuf timestamp, or empty.
pub(crate) fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map(|t| format_datetime_millis(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))
        .unwrap_or_default()
}

/// Milliseconds since the epoch of a protobuf timestamp.
pub(crate) fn millis(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

#[derive(Serialize)]
pub(crate) struct Warehouse {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u32,
    pub(crate) database: String,
    pub(crate) user: String,
    pub(crate) has_password: bool,
    pub(crate) dsn: String,
    pub(crate) has_ssl_root_cert: bool,
    pub(crate) require_read_only_role: bool,
    pub(crate) created_at: String,
}

impl From<&pb::Warehouse> for Warehouse {
    fn from(w: &pb::Warehouse) -> Self {
        Warehouse {
            id: w.id.clone(),
            name: w.name.clone(),
            host: w.host.clone(),
            port: w.port,
            database: w.database.clone(),
            user: w.user.clone(),
            has_password: w.has_password,
            dsn: w.dsn.clone(),
            has_ssl_root_cert: w.has_ssl_root_cert,
            require_read_only_role: w.require_read_only_role,
            created_at: time(w.created_at.as_ref()),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Target {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) project_id: String,
    pub(crate) residency: String,
    pub(crate) base_url: String,
    pub(crate) service_account_username: String,
    pub(crate) has_token: bool,
    pub(crate) has_service_account_secret: bool,
    pub(crate) allow_insecure_http: bool,
    pub(crate) rate_limit_per_second: u32,
    pub(crate) created_at: String,
}

impl Target {
    /// A warning when this target sends its credentials over plain HTTP to another machine.
    pub(crate) fn insecure_warning(&self) -> Option<String> {
        (self.allow_insecure_http && self.base_url.starts_with("http://")).then(|| {
            format!(
                "warning: target `{}` sends its project token and service-account secret \
                 unencrypted to {} (allow_insecure_http)",
                self.name, self.base_url
            )
        })
    }
}

impl From<&pb::Target> for Target {
    fn from(t: &pb::Target) -> Self {
        let residency = pb::Residency::try_from(t.residency)
            .map(|r| match r {
                pb::Residency::Us => "US",
                pb::Residency::Eu => "EU",
                pb::Residency::In => "IN",
                pb::Residency::Unspecified => "",
            })
            .unwrap_or("");
        Target {
            id: t.id.clone(),
            name: t.name.clone(),
            project_id: t.project_id.clone(),
            residency: residency.to_owned(),
            base_url: t.base_url.clone(),
            service_account_username: t.service_account_username.clone(),
            has_token: t.has_token,
            has_service_account_secret: t.has_service_account_secret,
            allow_insecure_http: t.allow_insecure_http,
            rate_limit_per_second: t.rate_limit_per_second,
            created_at: time(t.created_at.as_ref()),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) ok: bool,
    pub(crate) message: String,
}

impl From<&pb::Check> for Check {
    fn from(c: &pb::Check) -> Self {
        Check {
            name: c.name.clone(),
            ok: c.ok,
            message: c.message.clone(),
        }
    }
}

pub(crate) fn checks_text(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            format!("{mark}  {}: {}\n", c.name, c.message)
        })
        .collect()
}

pub(crate) fn object_name(object: i32) -> &'static str {
    match pb::MixpanelObject::try_from(object) {
        Ok(pb::MixpanelObject::Events) => "events",
        Ok(pb::MixpanelObject::UserProfiles) => "user_profiles",
        Ok(pb::MixpanelObject::GroupProfiles) => "group_profiles",
        _ => "unspecified",
    }
}

#[derive(Serialize)]
pub(crate) struct Activation {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) warehouse_id: String,
    pub(crate) target_id: String,
    pub(crate) object: &'static str,
    pub(crate) query: String,
    pub(crate) paused: bool,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl From<&pb::Activation> for Activation {
    fn from(a: &pb::Activation) -> Self {
        Activation {
            id: a.id.clone(),
            name: a.name.clone(),
            warehouse_id: a.warehouse_id.clone(),
            target_id: a.target_id.clone(),
            object: object_name(a.object),
            query: a.query.clone(),
            paused: a.paused,
            created_at: time(a.created_at.as_ref()),
            updated_at: time(a.updated_at.as_ref()),
        }
    }
}

pub(crate) fn state_name(state: i32) -> &'static str {
    match pb::RunState::try_from(state) {
        Ok(pb::RunState::Queued) => "QUEUED",
        Ok(pb::RunState::Running) => "RUNNING",
        Ok(pb::RunState::Succeeded) => "SUCCEEDED",
        Ok(pb::RunState::PartiallyFailed) => "PARTIALLY_FAILED",
        Ok(pb::RunState::Failed) => "FAILED",
        Ok(pb::RunState::Cancelled) => "CANCELLED",
        _ => "UNSPECIFIED",
    }
}

pub(crate) fn is_terminal(state: i32) -> bool {
    matches!(
        pb::RunState::try_from(state),
        Ok(pb::RunState::Succeeded
            | pb::RunState::PartiallyFailed
            | pb::RunState::Failed
            | pb::RunState::Cancelled)
    )
}

#[derive(Serialize, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) extracted: u64,
    pub(crate) skipped: u64,
    pub(crate) loaded: u64,
    pub(crate) failed: u64,
}

#[derive(Serialize)]
pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) activation_id: String,
    pub(crate) state: &'static str,
    pub(crate) counts: Counts,
    pub(crate) error_message: String,
    pub(crate) created_at: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) duration_seconds: Option<f64>,
    pub(crate) full_resync: bool,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) attempt_error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) full_sync_reason: String,
}

impl From<&pb::Run> for Run {
    fn from(r: &pb::Run) -> Self {
        let counts = r
            .counts
            .as_ref()
            .map(|c| Counts {
                extracted: c.extracted,
                skipped: c.skipped,
                loaded: c.loaded,
                failed: c.failed,
            })
            .unwrap_or_default();
        let start = millis(r.started_at.as_ref()).or(millis(r.created_at.as_ref()));
        let duration_seconds = match (start, millis(r.finished_at.as_ref())) {
            (Some(s), Some(f)) => Some((f - s).max(0) as f64 / 1000.0),
            _ => None,
        };
        Run {
            id: r.id.clone(),
            activation_id: r.activation_id.clone(),
            state: state_name(r.state),
            counts,
            error_message: r.error_message.clone(),
            created_at: time(r.created_at.as_ref()),
            started_at: time(r.started_at.as_ref()),
            finished_at: time(r.finished_at.as_ref()),
            duration_seconds,
            full_resync: r.full_resync,
            attempt: r.attempt.max(1),
            max_attempts: r.max_attempts.max(1),
            attempt_error: r.attempt_error.clone(),
            full_sync_reason: r.full_sync_reason.clone(),
        }
    }
}

impl Run {
    /// The run report for people.
    pub(crate) fn report(&self) -> String {
        let c = self.counts;
        let mut out = format!(
            "run {}  {}\n  extracted {}  skipped {}  loaded {}  failed {}\n",
            self.id, self.state, c.extracted, c.skipped, c.loaded, c.failed
        );
        if let Some(seconds) = self.duration_seconds {
            let rate = if seconds > 0.0 {
                format!("  ({:.0} rows/s)", c.extracted as f64 / seconds)
            } else {
                String::new()
            };
            out.push_str(&format!("  took {seconds:.2}s{rate}\n"));
        }
        if self.attempt > 1 || !self.attempt_error.is_empty() {
            out.push_str(&format!(
                "  attempt {} of {}",
                self.attempt, self.max_attempts
            ));
            if !self.attempt_error.is_empty() {
                out.push_str(&format!(
                    " (the last attempt ended: {})",
                    self.attempt_error
                ));
            }
            out.push('\n');
        }
        if !self.full_sync_reason.is_empty() {
            out.push_str(&format!("  full sync: {}\n", self.full_sync_reason));
        }
        if !self.error_message.is_empty() {
            out.push_str(&format!("  error: {}\n", self.error_message));
        }
        out
    }
}

pub(crate) fn stage_name(stage: i32) -> &'static str {
    match pb::Stage::try_from(stage) {
        Ok(pb::Stage::Extract) => "EXTRACT",
        Ok(pb::Stage::Map) => "MAP",
        Ok(pb::Stage::Load) => "LOAD",
        _ => "",
    }
}

#[derive(Serialize)]
pub(crate) struct FailedRecord {
    pub(crate) id: String,
    pub(crate) run_id: String,
    pub(crate) stage: &'static str,
    pub(crate) row_number: u64,
    pub(crate) field: String,
    pub(crate) rule: String,
    pub(crate) message: String,
    pub(crate) record_json: String,
}

impl From<&pb::FailedRecord> for FailedRecord {
    fn from(f: &pb::FailedRecord) -> Self {
        FailedRecord {
            id: f.id.clone(),
            run_id: f.run_id.clone(),
            stage: stage_name(f.stage),
            row_number: f.row_number,
            field: f.field.clone(),
            rule: f.rule.clone(),
            message: f.message.clone(),
            record_json: f.record_json.clone(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ReasonCount {
    pub(crate) stage: &'static str,
    pub(crate) field: String,
    pub(crate) rule: String,
    pub(crate) count: u64,
}

impl From<&pb::FailureReasonCount> for ReasonCount {
    fn from(r: &pb::FailureReasonCount) -> Self {
        ReasonCount {
            stage: stage_name(r.stage),
            field: r.field.clone(),
            rule: r.rule.clone(),
            count: r.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_sending_credentials_in_clear_is_warned_about() {
        let mut t = Target::from(&pb::Target {
            name: "mp".into(),
            base_url: "http://10.0.0.5:8080".into(),
            allow_insecure_http: true,
            ..Default::default()
        });
        assert_eq!(
            t.insecure_warning().as_deref(),
            Some(
                "warning: target `mp` sends its project token and service-account secret \
                 unencrypted to http://10.0.0.5:8080 (allow_insecure_http)"
            )
        );
        t.base_url = "https://10.0.0.5".into();
        assert_eq!(t.insecure_warning(), None);
        t.allow_insecure_http = false;
        t.base_url = "http://127.0.0.1:3900".into();
        assert_eq!(t.insecure_warning(), None);
    }
}
