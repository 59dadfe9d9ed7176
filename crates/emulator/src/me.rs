//! `GET /api/app/me`: the service account and the projects it can use (for TestTarget).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, json};

use crate::auth;
use crate::reply;
use crate::state::State;
use crate::stats::Endpoint;

pub(crate) fn handle(state: &State, headers: &HeaderMap) -> Response {
    let response = respond(state, headers);
    state
        .stats
        .request(Endpoint::Me, response.status().as_u16());
    response
}

fn respond(state: &State, headers: &HeaderMap) -> Response {
    let account = auth::basic_credentials(headers.get(header::AUTHORIZATION))
        .and_then(|(user, pass)| auth::service_account(state, &user, &pass));
    let Some(account) = account else {
        return reply::json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": auth::INVALID_CREDENTIALS, "status": "error"}),
        );
    };
    let mut projects = Map::new();
    for project in &state.projects {
        if let Some(role) = account.roles.get(&project.id.to_string()) {
            projects.insert(
                project.id.to_string(),
                json!({"id": project.id, "name": project.name, "role": role.as_str()}),
            );
        }
    }
    reply::json(
        StatusCode::OK,
        &json!({"results": {
            "user_name": account.username,
            "user_email": null,
            "projects": projects,
            "workspaces": {},
            "organizations": {},
        }}),
    )
}
