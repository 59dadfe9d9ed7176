//! The `mixsync.v1.Control` service: each RPC delegates to its resource module, and every error
//! becomes a status in `errors.rs`.

mod activations;
mod failed;
pub(crate) mod runs;
mod targets;
mod warehouses;

use mixsync_bus::Publisher;
use mixsync_proto::v1::{self, control_server::Control};
use mixsync_state::StateStore;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::errors::ApiResult;

/// What every RPC works with.
#[derive(Clone)]
pub(crate) struct Context {
    pub state: StateStore,
    pub publisher: Publisher,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
}

/// The Control service implementation.
pub(crate) struct ControlService {
    ctx: Context,
}

impl ControlService {
    pub(crate) fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

fn reply<T>(result: ApiResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn create_warehouse(
        &self,
        request: Request<v1::CreateWarehouseRequest>,
    ) -> Result<Response<v1::CreateWarehouseResponse>, Status> {
        reply(warehouses::create(&self.ctx, request.into_inner()).await)
    }

    async fn get_warehouse(
        &self,
        request: Request<v1::GetWarehouseRequest>,
    ) -> Result<Response<v1::GetWarehouseResponse>, Status> {
        reply(warehouses::get(&self.ctx, request.into_inner()).await)
    }

    async fn list_warehouses(
        &self,
        request: Request<v1::ListWarehousesRequest>,
    ) -> Result<Response<v1::ListWarehousesResponse>, Status> {
        reply(warehouses::list(&self.ctx, request.into_inner()).await)
    }

    async fn delete_warehouse(
        &self,
        request: Request<v1::DeleteWarehouseRequest>,
    ) -> Result<Response<v1::DeleteWarehouseResponse>, Status> {
        reply(warehouses::delete(&self.ctx, request.into_inner()).await)
    }

    async fn test_warehouse(
        &self,
        request: Request<v1::TestWarehouseRequest>,
    ) -> Result<Response<v1::TestWarehouseResponse>, Status> {
        reply(warehouses::test(&self.ctx, request.into_inner()).await)
    }

    async fn create_target(
        &self,
        request: Request<v1::CreateTargetRequest>,
    ) -> Result<Response<v1::CreateTargetResponse>, Status> {
        reply(targets::create(&self.ctx, request.into_inner()).await)
    }

    async fn get_target(
        &self,
        request: Request<v1::GetTargetRequest>,
    ) -> Result<Response<v1::GetTargetResponse>, Status> {
        reply(targets::get(&self.ctx, request.into_inner()).await)
    }

    async fn list_targets(
        &self,
        request: Request<v1::ListTargetsRequest>,
    ) -> Result<Response<v1::ListTargetsResponse>, Status> {
        reply(targets::list(&self.ctx, request.into_inner()).await)
    }

    async fn update_target(
        &self,
        request: Request<v1::UpdateTargetRequest>,
    ) -> Result<Response<v1::UpdateTargetResponse>, Status> {
        reply(targets::update(&self.ctx, request.into_inner()).await)
    }

    async fn delete_target(
        &self,
        request: Request<v1::DeleteTargetRequest>,
    ) -> Result<Response<v1::DeleteTargetResponse>, Status> {
        reply(targets::delete(&self.ctx, request.into_inner()).await)
    }

    async fn test_target(
        &self,
        request: Request<v1::TestTargetRequest>,
    ) -> Result<Response<v1::TestTargetResponse>, Status> {
        reply(targets::test(&self.ctx, request.into_inner()).await)
    }

    async fn create_activation(
        &self,
        request: Request<v1::CreateActivationRequest>,
    ) -> Result<Response<v1::CreateActivationResponse>, Status> {
        reply(activations::create(&self.ctx, request.into_inner()).await)
    }

    async fn get_activation(
        &self,
        request: Request<v1::GetActivationRequest>,
    ) -> Result<Response<v1::GetActivationResponse>, Status> {
        reply(activations::get(&self.ctx, request.into_inner()).await)
    }

    async fn list_activations(
        &self,
        request: Request<v1::ListActivationsRequest>,
    ) -> Result<Response<v1::ListActivationsResponse>, Status> {
        reply(activations::list(&self.ctx, request.into_inner()).await)
    }

    async fn update_activation(
        &self,
        request: Request<v1::UpdateActivationRequest>,
    ) -> Result<Response<v1::UpdateActivationResponse>, Status> {
        reply(activations::update(&self.ctx, request.into_inner()).await)
    }

    async fn delete_activation(
        &self,
        request: Request<v1::DeleteActivationRequest>,
    ) -> Result<Response<v1::DeleteActivationResponse>, Status> {
        reply(activations::delete(&self.ctx, request.into_inner()).await)
    }

    async fn preview_activation(
        &self,
        request: Request<v1::PreviewActivationRequest>,
    ) -> Result<Response<v1::PreviewActivationResponse>, Status> {
        reply(activations::preview(&self.ctx, request.into_inner()).await)
    }

    async fn pause_activation(
        &self,
        request: Request<v1::PauseActivationRequest>,
    ) -> Result<Response<v1::PauseActivationResponse>, Status> {
        let activation = activations::set_paused(&self.ctx, &request.into_inner().id, true).await;
        reply(activation.map(|a| v1::PauseActivationResponse {
            activation: Some(a),
        }))
    }

    async fn resume_activation(
        &self,
        request: Request<v1::ResumeActivationRequest>,
    ) -> Result<Response<v1::ResumeActivationResponse>, Status> {
        let activation = activations::set_paused(&self.ctx, &request.into_inner().id, false).await;
        reply(activation.map(|a| v1::ResumeActivationResponse {
            activation: Some(a),
        }))
    }

    async fn trigger_run(
        &self,
        request: Request<v1::TriggerRunRequest>,
    ) -> Result<Response<v1::TriggerRunResponse>, Status> {
        reply(runs::trigger(&self.ctx, request.into_inner()).await)
    }

    async fn get_run(
        &self,
        request: Request<v1::GetRunRequest>,
    ) -> Result<Response<v1::GetRunResponse>, Status> {
        reply(runs::get(&self.ctx, request.into_inner()).await)
    }

    async fn list_runs(
        &self,
        request: Request<v1::ListRunsRequest>,
    ) -> Result<Response<v1::ListRunsResponse>, Status> {
        reply(runs::list(&self.ctx, request.into_inner()).await)
    }

    type WatchRunStream = runs::WatchStream;

    async fn watch_run(
        &self,
        request: Request<v1::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        reply(runs::watch(&self.ctx, request.into_inner()).await)
    }

    async fn cancel_run(
        &self,
        request: Request<v1::CancelRunRequest>,
    ) -> Result<Response<v1::CancelRunResponse>, Status> {
        reply(runs::cancel(&self.ctx, request.into_inner()).await)
    }

    async fn list_failed_records(
        &self,
        request: Request<v1::ListFailedRecordsRequest>,
    ) -> Result<Response<v1::ListFailedRecordsResponse>, Status> {
        reply(runs::list_failed_records(&self.ctx, request.into_inner()).await)
    }

    async fn replay_failed_records(
        &self,
        request: Request<v1::ReplayFailedRecordsRequest>,
    ) -> Result<Response<v1::ReplayFailedRecordsResponse>, Status> {
        reply(failed::replay(&self.ctx, request.into_inner()).await)
    }

    async fn get_failed_record(
        &self,
        request: Request<v1::GetFailedRecordRequest>,
    ) -> Result<Response<v1::GetFailedRecordResponse>, Status> {
        reply(failed::get(&self.ctx, request.into_inner()).await)
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        reply(failed::list_dead_letters(&self.ctx, request.into_inner()).await)
    }
}
