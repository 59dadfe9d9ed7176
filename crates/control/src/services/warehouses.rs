//! Warehouses: Create (tested first), Get, List, Delete, Test.

use mixsync_proto::v1::{self, test_warehouse_request};

use super::Context;
use crate::checks::{checks_to_proto, first_failure, test_warehouse};
use crate::convert::{page, tls_to_proto, warehouse_spec, warehouse_to_proto};
use crate::errors::{ApiError, ApiResult};

pub(crate) async fn create(
    ctx: &Context,
    req: v1::CreateWarehouseRequest,
) -> ApiResult<v1::CreateWarehouseResponse> {
    let spec = req
        .warehouse
        .ok_or_else(|| ApiError::invalid("warehouse", "is required"))?;
    let spec = warehouse_spec(&spec, "warehouse")?;
    if ctx
        .state
        .find_warehouse_by_name(&spec.name)
        .await?
        .is_some()
    {
        return Err(mixsync_state::StateError::NameTaken {
            kind: "warehouse",
            name: spec.name,
        }
        .into());
    }
    let report = test_warehouse(&spec.connection()).await;
    if let Some(failed) = first_failure(&report.checks) {
        return Err(ApiError::FailedPrecondition(format!(
            "warehouse `{}` failed the `{}` check: {}",
            spec.name, failed.name, failed.message
        )));
    }
    let warehouse = ctx.state.create_warehouse(&spec).await?;
    tracing::info!(id = %warehouse.id, name = %warehouse.name, "warehouse created");
    Ok(v1::CreateWarehouseResponse {
        warehouse: Some(warehouse_to_proto(&warehouse)),
        warnings: report.warnings,
    })
}

pub(crate) async fn get(
    ctx: &Context,
    req: v1::GetWarehouseRequest,
) -> ApiResult<v1::GetWarehouseResponse> {
    let warehouse = ctx.state.get_warehouse(req.id.trim()).await?;
    Ok(v1::GetWarehouseResponse {
        warehouse: Some(warehouse_to_proto(&warehouse)),
    })
}

pub(crate) async fn list(
    ctx: &Context,
    req: v1::ListWarehousesRequest,
) -> ApiResult<v1::ListWarehousesResponse> {
    let listed = ctx
        .state
        .list_warehouses(&page(req.page_size, &req.page_token))
        .await?;
    Ok(v1::ListWarehousesResponse {
        warehouses: listed.items.iter().map(warehouse_to_proto).collect(),
        next_page_token: listed.next_page_token.unwrap_or_default(),
    })
}

pub(crate) async fn delete(
    ctx: &Context,
    req: v1::DeleteWarehouseRequest,
) -> ApiResult<v1::DeleteWarehouseResponse> {
    ctx.state.delete_warehouse(req.id.trim()).await?;
    tracing::info!(id = %req.id, "warehouse deleted");
    Ok(v1::DeleteWarehouseResponse {})
}

pub(crate) async fn test(
    ctx: &Context,
    req: v1::TestWarehouseRequest,
) -> ApiResult<v1::TestWarehouseResponse> {
    let connection = match req.warehouse {
        Some(test_warehouse_request::Warehouse::Id(id)) => {
            ctx.state.warehouse_connection(id.trim()).await?
        }
        Some(test_warehouse_request::Warehouse::Spec(spec)) => {
            warehouse_spec(&spec, "spec")?.connection()
        }
        None => return Err(ApiError::invalid("warehouse", "give an id or a spec")),
    };
    let report = test_warehouse(&connection).await;
    Ok(v1::TestWarehouseResponse {
        ok: first_failure(&report.checks).is_none(),
        checks: checks_to_proto(&report.checks),
        server_version: report.server_version,
        tls: report.tls.as_ref().map(tls_to_proto),
        warnings: report.warnings,
    })
}
