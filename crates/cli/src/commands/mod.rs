//! The client subcommands: thin wrappers over the gRPC API.

pub(crate) mod activation;
pub(crate) mod failed;
pub(crate) mod run;
pub(crate) mod target;
pub(crate) mod warehouse;

use mixsync_proto::v1 as pb;

use crate::client::{Control, status_error};

/// Finds a warehouse by id or by name.
pub(crate) async fn find_warehouse(
    control: &mut Control,
    key: &str,
) -> anyhow::Result<Option<pb::Warehouse>> {
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
        if let Some(w) = page
            .warehouses
            .into_iter()
            .find(|w| w.id == key || w.name == key)
        {
            return Ok(Some(w));
        }
        if page.next_page_token.is_empty() {
            return Ok(None);
        }
        page_token = page.next_page_token;
    }
}

/// Finds a target by id or by name.
pub(crate) async fn find_target(
    control: &mut Control,
    key: &str,
) -> anyhow::Result<Option<pb::Target>> {
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
        if let Some(t) = page
            .targets
            .into_iter()
            .find(|t| t.id == key || t.name == key)
        {
            return Ok(Some(t));
        }
        if page.next_page_token.is_empty() {
            return Ok(None);
        }
        page_token = page.next_page_token;
    }
}

/// Finds an activation by id or by name.
pub(crate) async fn find_activation(
    control: &mut Control,
    key: &str,
) -> anyhow::Result<Option<pb::Activation>> {
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
        if let Some(a) = page
            .activations
            .into_iter()
            .find(|a| a.id == key || a.name == key)
        {
            return Ok(Some(a));
        }
        if page.next_page_token.is_empty() {
            return Ok(None);
        }
        page_token = page.next_page_token;
    }
}

/// The id of a warehouse, target or activation given by id or name, or a clear error.
pub(crate) fn require<T>(found: Option<T>, kind: &str, key: &str) -> anyhow::Result<T> {
    found.ok_or_else(|| anyhow::anyhow!("no {kind} has the id or name `{key}`"))
}
