//! The bearer token guards every service but health.

use mixsync_proto::v1::{self, control_client::ControlClient};
use tonic::{Code, Request};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaMessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaMessageResponse;

use crate::common::Harness;

fn with_auth<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    request
}

#[tokio::test]
async fn calls_need_the_bearer_token_and_health_stays_open() {
    let h = Harness::start(Some("s3cret-token-0123456789")).await;
    let mut client = ControlClient::new(h.channel().await);

    let missing = client
        .list_warehouses(v1::ListWarehousesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("authorization: Bearer"),
        "{missing:?}"
    );
    let wrong = client
        .list_warehouses(with_auth(
            v1::ListWarehousesRequest::default(),
            "Bearer nope",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(!wrong.message().contains("s3cret"));
    client
        .list_warehouses(with_auth(
            v1::ListWarehousesRequest::default(),
            "Bearer s3cret-token-0123456789",
        ))
        .await
        .unwrap();

    let mut health = HealthClient::new(h.channel().await);
    for service in ["", "mixsync.v1.Control"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }

    // Reflection answers with the token, so stock tools can list the API.
    let mut reflection = ServerReflectionClient::new(h.channel().await);
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let refused = reflection
        .server_reflection_info(futures_util::stream::iter([ask.clone()]))
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    let mut answers = reflection
        .server_reflection_info(with_auth(
            futures_util::stream::iter([ask]),
            "Bearer s3cret-token-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"mixsync.v1.Control"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    // The same through reflection v1alpha, which many stock tools still speak; behind the token too.
    let mut alpha = AlphaClient::new(h.channel().await);
    let ask = AlphaRequest {
        host: String::new(),
        message_request: Some(AlphaMessageRequest::ListServices(String::new())),
    };
    let refused = alpha
        .server_reflection_info(futures_util::stream::iter([ask.clone()]))
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    let mut answers = alpha
        .server_reflection_info(with_auth(
            futures_util::stream::iter([ask]),
            "Bearer s3cret-token-0123456789",
        ))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(AlphaMessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected v1alpha reflection answer {answer:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"mixsync.v1.Control"), "{names:?}");
    h.stop().await;
}
