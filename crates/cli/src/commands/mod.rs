//! The client subcommands: thin wrappers over the gRPC API.

pub(crate) mod activation;
pub(crate) mod failed;
pub(crate) mod run;
pub(crate) mod target;
pub(crate) mod warehouse;

use mixsync_proto::v1 as pb;

use crate::client::{Control, status_error};

/// Every warehouse, all pages.
pub(crate) async fn all_warehouses(control: &mut Control) -> anyhow::Result<Vec<pb::Warehouse>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = control
            .list_warehouses(pb::ListWarehousesRequest {
                page_size: 200,
                page_token,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        all.extend(page.warehouses);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// Every target, all pages.
pub(crate) async fn all_targets(control: &mut Control) -> anyhow::Result<Vec<pb::Target>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = control
            .list_targets(pb::ListTargetsRequest {
                page_size: 200,
                page_token,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        all.extend(page.targets);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// Every activation, all pages.
pub(crate) async fn all_activations(control: &mut Control) -> anyhow::Result<Vec<pb::Activation>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = control
            .list_activations(pb::ListActivationsRequest {
                page_size: 200,
                page_token,
                ..Default::default()
            })
            .await
            .map_err(status_error)?
            .into_inner();
        all.extend(page.activations);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// Finds a warehouse by id or by name.
pub(crate) async fn find_warehouse(
    control: &mut Control,
    key: &str,
) -> anyhow::Result<Option<pb::Warehouse>> {
    let all = all_warehouses(control).await?;
    Ok(all.into_iter().find(|w| w.id == key || w.name == key))
}

/// Finds a target by id or by name.
pub(crate) async fn find_target(
    control: &mut Control,
    key: &str,
) -> anyhow::Result<Option<pb::Target>> {
    let all = all_targets(control).await?;
    Ok(all.into_iter().find(|t| t.id == key || t.name == key))
}

/// Finds an activation by id or by name.
pub(crate) async fn find_activation(
    control: &mut Control,
    key: &str,
) -> anyhow::Result<Option<pb::Activation>> {
    let all = all_activations(control).await?;
    Ok(all.into_iter().find(|a| a.id == key || a.name == key))
}

/// The id of a warehouse, target or activation given by id or name, or a clear error.
pub(crate) fn require<T>(found: Option<T>, kind: &str, key: &str) -> anyhow::Result<T> {
    found.ok_or_else(|| anyhow::anyhow!("no {kind} has the id or name `{key}`"))
}
