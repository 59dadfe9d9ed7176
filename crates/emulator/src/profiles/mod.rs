//! `POST /engage` (user profiles) and `POST /groups` (group profiles).

mod apply;
mod request;
mod update;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use crate::reply;
use crate::state::{State, now_ms};
use crate::stats::Endpoint;
use request::Verbosity;
use update::Kind;

/// Which profile endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Engage,
    Groups,
}

impl Api {
    fn endpoint(self) -> Endpoint {
        match self {
            Api::Engage => Endpoint::Engage,
            Api::Groups => Endpoint::Groups,
        }
    }

    fn error_prefix(self) -> &'static str {
        match self {
            Api::Engage => "Engage API error: ",
            Api::Groups => "Groups API error: ",
        }
    }
}

#[derive(Serialize)]
struct VerboseBody<'a> {
    error: Option<&'a str>,
    status: u8,
}

/// Handles one profile request whose faults have been applied.
pub(crate) fn handle(
    state: &State,
    api: Api,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let parsed = request::parse(query, headers, body);
    let verbosity = parsed.verbosity;
    let max = match api {
        Api::Engage => state.limits.max_engage_updates,
        Api::Groups => state.limits.max_group_updates,
    };
    let updates = parsed.updates.and_then(|updates| {
        if updates.len() > max {
            Err(format!(
                "too many updates in request: {} (max {max})",
                updates.len()
            ))
        } else {
            Ok(updates)
        }
    });
    let (valid, failures, total) = match updates {
        Err(error) => (0, vec![], Err(error)),
        Ok(raw) => {
            let kind = match api {
                Api::Engage => Kind::User,
                Api::Groups => Kind::Group,
            };
            let judged: Vec<_> = raw
                .iter()
                .map(|(value, size)| update::judge(value, *size, kind, state))
                .collect();
            // The rate limiter charges the project of the first valid token.
            let project = judged
                .iter()
                .find_map(|j| j.as_ref().ok().map(|u| u.project));
            if let Some(project) = project {
                let bytes = raw.iter().map(|(_, size)| *size as u64).sum();
                if let Err(response) = state.admit(project, raw.len() as u64, bytes) {
                    state
                        .stats
                        .request(api.endpoint(), response.status().as_u16());
                    return response;
                }
            }
            let now = now_ms();
            let mut valid = 0;
            let mut failures = Vec::new();
            for (index, outcome) in judged.into_iter().enumerate() {
                match outcome {
                    Ok(update) => {
                        valid += 1;
                        apply::apply(state, update, now);
                    }
                    Err(message) => failures.push((index, message)),
                }
            }
            (valid, failures, Ok(raw.len()))
        }
    };
    state.stats.records(valid as u64, failures.len() as u64, 0);
    let error = match &total {
        Err(message) => Some(message.clone()),
        Ok(_) if failures.is_empty() => None,
        Ok(total) => Some(summarise(&failures, *total)),
    };
    let response = answer(api, verbosity, valid > 0, error.as_deref());
    state
        .stats
        .request(api.endpoint(), response.status().as_u16());
    response
}

/// `N of M updates failed: [I] MESSAGE; …`, listing up to 20.
fn summarise(failures: &[(usize, String)], total: usize) -> String {
    let listed: Vec<String> = failures
        .iter()
        .take(20)
        .map(|(index, message)| format!("[{index}] {message}"))
        .collect();
    format!(
        "{} of {total} updates failed: {}",
        failures.len(),
        listed.join("; ")
    )
}

fn answer(api: Api, verbosity: Verbosity, any_valid: bool, error: Option<&str>) -> Response {
    match verbosity {
        Verbosity::Plain => reply::raw(
            StatusCode::OK,
            "text/plain",
            if any_valid { "1" } else { "0" },
        ),
        Verbosity::Json => reply::json(
            StatusCode::OK,
            &VerboseBody {
                error,
                status: u8::from(error.is_none()),
            },
        ),
        Verbosity::Errors => match error {
            None => reply::json(
                StatusCode::OK,
                &VerboseBody {
                    error: None,
                    status: 1,
                },
            ),
            Some(error) => reply::json(
                StatusCode::BAD_REQUEST,
                &VerboseBody {
                    error: Some(&format!("{}{error}", api.error_prefix())),
                    status: 0,
                },
            ),
        },
    }
}
