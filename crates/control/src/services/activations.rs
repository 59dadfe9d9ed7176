//! Activations: Create and Update (validated against the warehouse first), Get, List, Delete,
//! Preview, Pause, Resume.

use mixsync_proto::v1::{self, preview_activation_request};
use mixsync_state::{ActivationFilter, StateError};

use super::Context;
use crate::convert::{activation_spec, activation_to_proto, page};
use crate::errors::{ApiError, ApiResult};
use crate::preview::preview as preview_rows;
use crate::validate::validate_activation;

pub(crate) async fn create(
    ctx: &Context,
    req: v1::CreateActivationRequest,
) -> ApiResult<v1::CreateActivationResponse> {
    let spec = req
        .activation
        .ok_or_else(|| ApiError::invalid("activation", "is required"))?;
    let spec = activation_spec(&spec, "activation")?;
    if ctx
        .state
        .find_activation_by_name(&spec.name)
        .await?
        .is_some()
    {
        return Err(StateError::NameTaken {
            kind: "activation",
            name: spec.name,
        }
        .into());
    }
    validate_activation(&ctx.state, &spec, "activation").await?;
    let activation = ctx.state.create_activation(&spec).await?;
    tracing::info!(id = %activation.id, name = %activation.spec.name, "activation created");
    Ok(v1::CreateActivationResponse {
        activation: Some(activation_to_proto(&activation)),
    })
}

pub(crate) async fn update(
    ctx: &Context,
    req: v1::UpdateActivationRequest,
) -> ApiResult<v1::UpdateActivationResponse> {
    let id = req.id.trim();
    let spec = req
        .activation
        .ok_or_else(|| ApiError::invalid("activation", "is required"))?;
    let spec = activation_spec(&spec, "activation")?;
    ctx.state.get_activation(id).await?;
    validate_activation(&ctx.state, &spec, "activation").await?;
    let activation = ctx.state.update_activation(id, &spec).await?;
    tracing::info!(id = %activation.id, name = %activation.spec.name, "activation updated");
    Ok(v1::UpdateActivationResponse {
        activation: Some(activation_to_proto(&activation)),
    })
}

pub(crate) async fn get(
    ctx: &Context,
    req: v1::GetActivationRequest,
) -> ApiResult<v1::GetActivationResponse> {
    let activation = ctx.state.get_activation(req.id.trim()).await?;
    Ok(v1::GetActivationResponse {
        activation: Some(activation_to_proto(&activation)),
    })
}

pub(crate) async fn list(
    ctx: &Context,
    req: v1::ListActivationsRequest,
) -> ApiResult<v1::ListActivationsResponse> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = ActivationFilter {
        warehouse_id: opt(&req.warehouse_id),
        target_id: opt(&req.target_id),
    };
    let listed = ctx
        .state
        .list_activations(&filter, &page(req.page_size, &req.page_token))
        .await?;
    Ok(v1::ListActivationsResponse {
        activations: listed.items.iter().map(activation_to_proto).collect(),
        next_page_token: listed.next_page_token.unwrap_or_default(),
    })
}

pub(crate) async fn delete(
    ctx: &Context,
    req: v1::DeleteActivationRequest,
) -> ApiResult<v1::DeleteActivationResponse> {
    ctx.state.delete_activation(req.id.trim()).await?;
    tracing::info!(id = %req.id, "activation deleted");
    Ok(v1::DeleteActivationResponse {})
}

pub(crate) async fn preview(
    ctx: &Context,
    req: v1::PreviewActivationRequest,
) -> ApiResult<v1::PreviewActivationResponse> {
    let (spec, prefix) = match req.activation {
        Some(preview_activation_request::Activation::Id(id)) => (
            ctx.state.get_activation(id.trim()).await?.spec,
            "activation",
        ),
        Some(preview_activation_request::Activation::Spec(spec)) => {
            let spec = activation_spec(&spec, "spec")?;
            validate_activation(&ctx.state, &spec, "spec").await?;
            (spec, "spec")
        }
        None => return Err(ApiError::invalid("activation", "give an id or a spec")),
    };
    preview_rows(&ctx.state, &spec, req.limit, prefix).await
}

pub(crate) async fn set_paused(ctx: &Context, id: &str, paused: bool) -> ApiResult<v1::Activation> {
    let activation = ctx.state.set_activation_paused(id.trim(), paused).await?;
    tracing::info!(id = %activation.id, paused, "activation schedule toggled");
    Ok(activation_to_proto(&activation))
}
