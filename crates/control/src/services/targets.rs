//! Targets: Create and Update (both run TestTarget first), Get, List, Delete, Test.

use mixsync_domain::Residency;
use mixsync_proto::v1::{self, test_target_request};
use mixsync_state::{StateError, TargetSpec};
use secrecy::SecretString;

use super::Context;
use crate::checks::{Check, TargetProbe, checks_to_proto, first_failure, test_target};
use crate::convert::{Secrets, page, target_spec, target_to_proto};
use crate::errors::{ApiError, ApiResult};

/// Where `/api/app/me` lives: the explicit base URL, else the residency's app host.
fn app_base_url(residency: Residency, base_url: Option<&str>) -> String {
    base_url.map_or_else(|| residency.app_base_url().to_owned(), str::to_owned)
}

fn probe(spec: &TargetSpec, token: SecretString, secret: SecretString) -> TargetProbe {
    TargetProbe {
        app_base_url: app_base_url(spec.residency, spec.base_url.as_deref()),
        project_id: spec.project_id,
        token,
        service_account_username: spec.service_account_username.clone(),
        service_account_secret: secret,
    }
}

fn empty() -> SecretString {
    SecretString::from(String::new())
}

/// Runs TestTarget and turns a failure into `FAILED_PRECONDITION` with its reason.
async fn test_or_refuse(ctx: &Context, name: &str, probe: &TargetProbe) -> ApiResult<Vec<Check>> {
    let checks = test_target(&ctx.http, probe).await;
    if let Some(failed) = first_failure(&checks) {
        return Err(ApiError::FailedPrecondition(format!(
            "target `{name}` failed the `{}` check: {}",
            failed.name, failed.message
        )));
    }
    Ok(checks)
}

pub(crate) async fn create(
    ctx: &Context,
    req: v1::CreateTargetRequest,
) -> ApiResult<v1::CreateTargetResponse> {
    let spec = req
        .target
        .ok_or_else(|| ApiError::invalid("target", "is required"))?;
    let spec = target_spec(&spec, "target", Secrets::Required)?;
    if ctx.state.find_target_by_name(&spec.name).await?.is_some() {
        return Err(StateError::NameTaken {
            kind: "target",
            name: spec.name,
        }
        .into());
    }
    let probe = probe(
        &spec,
        spec.token.clone().unwrap_or_else(empty),
        spec.service_account_secret.clone().unwrap_or_else(empty),
    );
    let checks = test_or_refuse(ctx, &spec.name, &probe).await?;
    let target = ctx.state.create_target(&spec).await?;
    tracing::info!(id = %target.id, name = %target.name, "target created");
    Ok(v1::CreateTargetResponse {
        target: Some(target_to_proto(&target)),
        checks: checks_to_proto(&checks),
    })
}

pub(crate) async fn update(
    ctx: &Context,
    req: v1::UpdateTargetRequest,
) -> ApiResult<v1::UpdateTargetResponse> {
    let id = req.id.trim();
    let spec = req
        .target
        .ok_or_else(|| ApiError::invalid("target", "is required"))?;
    let spec = target_spec(&spec, "target", Secrets::KeepIfEmpty)?;
    let current = ctx.state.get_target(id).await?;
    refuse_stored_secrets_to_a_new_destination(&current, &spec)?;
    let stored = ctx.state.target_connection(id).await?;
    let probe = probe(
        &spec,
        spec.token.clone().unwrap_or(stored.token),
        spec.service_account_secret
            .clone()
            .unwrap_or(stored.service_account_secret),
    );
    let checks = test_or_refuse(ctx, &spec.name, &probe).await?;
    let target = ctx.state.update_target(id, &spec).await?;
    tracing::info!(id = %target.id, name = %target.name, "target updated");
    Ok(v1::UpdateTargetResponse {
        target: Some(target_to_proto(&target)),
        checks: checks_to_proto(&checks),
    })
}

/// The stored token and service-account secret only ever go where they were given for: an update
/// that moves the target (another project, residency or base URL) must give both again, or
/// anyone with API access could send them to a URL of their choosing.
fn refuse_stored_secrets_to_a_new_destination(
    current: &mixsync_state::Target,
    spec: &mixsync_state::TargetSpec,
) -> ApiResult<()> {
    let moved = current.project_id != spec.project_id
        || current.residency != spec.residency
        || current.base_url != spec.base_url;
    let missing: Vec<&str> = [
        ("target.token", spec.token.is_none()),
        (
            "target.service_account_secret",
            spec.service_account_secret.is_none(),
        ),
    ]
    .into_iter()
    .filter_map(|(field, missing)| missing.then_some(field))
    .collect();
    if moved && !missing.is_empty() {
        return Err(ApiError::invalid(
            missing.join(", "),
            "is required when project_id, residency or base_url changes: stored secrets are \
             never sent to a new destination",
        ));
    }
    Ok(())
}

pub(crate) async fn get(
    ctx: &Context,
    req: v1::GetTargetRequest,
) -> ApiResult<v1::GetTargetResponse> {
    let target = ctx.state.get_target(req.id.trim()).await?;
    Ok(v1::GetTargetResponse {
        target: Some(target_to_proto(&target)),
    })
}

pub(crate) async fn list(
    ctx: &Context,
    req: v1::ListTargetsRequest,
) -> ApiResult<v1::ListTargetsResponse> {
    let listed = ctx
        .state
        .list_targets(&page(req.page_size, &req.page_token))
        .await?;
    Ok(v1::ListTargetsResponse {
        targets: listed.items.iter().map(target_to_proto).collect(),
        next_page_token: listed.next_page_token.unwrap_or_default(),
    })
}

pub(crate) async fn delete(
    ctx: &Context,
    req: v1::DeleteTargetRequest,
) -> ApiResult<v1::DeleteTargetResponse> {
    ctx.state.delete_target(req.id.trim()).await?;
    tracing::info!(id = %req.id, "target deleted");
    Ok(v1::DeleteTargetResponse {})
}

pub(crate) async fn test(
    ctx: &Context,
    req: v1::TestTargetRequest,
) -> ApiResult<v1::TestTargetResponse> {
    let probe = match req.target {
        Some(test_target_request::Target::Id(id)) => {
            let target = ctx.state.get_target(id.trim()).await?;
            let connection = ctx.state.target_connection(&target.id).await?;
            TargetProbe {
                app_base_url: app_base_url(target.residency, target.base_url.as_deref()),
                project_id: target.project_id,
                token: connection.token,
                service_account_username: connection.service_account_username,
                service_account_secret: connection.service_account_secret,
            }
        }
        Some(test_target_request::Target::Spec(spec)) => {
            let spec = target_spec(&spec, "spec", Secrets::Required)?;
            probe(
                &spec,
                spec.token.clone().unwrap_or_else(empty),
                spec.service_account_secret.clone().unwrap_or_else(empty),
            )
        }
        None => return Err(ApiError::invalid("target", "give an id or a spec")),
    };
    let checks = test_target(&ctx.http, &probe).await;
    Ok(v1::TestTargetResponse {
        ok: first_failure(&checks).is_none(),
        checks: checks_to_proto(&checks),
    })
}
