//! Routes, and the accept loop that can reset a connection on demand (fault injection).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::profiles::Api;
use crate::state::{FaultOutcome, State};
use crate::stats::Endpoint;
use crate::{import, inspect, me, profiles, reply};

type Shared = AxumState<Arc<State>>;

/// Asks the connection serving a request to reset itself.
#[derive(Clone, Default)]
pub(crate) struct ResetSignal(Arc<Notify>);

/// Bodies above this are refused before the handlers see them; `/import` answers its own 413 below it.
const BODY_LIMIT: usize = 1 << 30;

/// The emulator's HTTP routes.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/import", post(import_route))
        .route("/engage", post(engage_route))
        .route("/groups", post(groups_route))
        .route("/api/app/me", get(me_route))
        .route(
            "/_emulator/events",
            get(|s: Shared, q: Query<HashMap<String, String>>| async move {
                inspect::events(&s.0, &q.0)
            }),
        )
        .route(
            "/_emulator/profiles",
            get(|s: Shared, q: Query<HashMap<String, String>>| async move {
                inspect::profiles(&s.0, &q.0)
            }),
        )
        .route(
            "/_emulator/groups",
            get(|s: Shared, q: Query<HashMap<String, String>>| async move {
                inspect::groups(&s.0, &q.0)
            }),
        )
        .route(
            "/_emulator/stats",
            get(|s: Shared| async move { inspect::stats(&s.0) }),
        )
        .route(
            "/_emulator/reset",
            post(|s: Shared| async move { inspect::reset(&s.0) }),
        )
        .route(
            "/_emulator/faults",
            get(|s: Shared| async move { inspect::get_faults(&s.0) })
                .put(|s: Shared, body: Bytes| async move { inspect::put_faults(&s.0, &body) }),
        )
        .route(
            "/_emulator/revoked",
            get(|s: Shared| async move { inspect::get_revoked(&s.0) })
                .put(|s: Shared, body: Bytes| async move { inspect::put_revoked(&s.0, &body) }),
        )
        .fallback(|| async { reply::plain_error(StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Applies faults; `Err` is the response to give (or a connection reset, which never answers).
async fn faults(
    state: &State,
    endpoint: Endpoint,
    reset: Option<&ResetSignal>,
) -> Result<(), Response> {
    match state.suffer_faults(endpoint).await {
        Ok(()) => Ok(()),
        Err(FaultOutcome::Answer(response)) => Err(response),
        Err(FaultOutcome::Reset) => {
            if let Some(ResetSignal(notify)) = reset {
                notify.notify_one();
                // The connection task drops this request with the connection.
                std::future::pending::<()>().await;
            }
            Err(reply::injected(503))
        }
    }
}

async fn import_route(
    AxumState(state): Shared,
    reset: Option<Extension<ResetSignal>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = faults(&state, Endpoint::Import, reset.as_deref()).await {
        return response;
    }
    import::handle(&state, uri.query(), &headers, &body)
}

async fn engage_route(
    AxumState(state): Shared,
    reset: Option<Extension<ResetSignal>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = faults(&state, Endpoint::Engage, reset.as_deref()).await {
        return response;
    }
    profiles::handle(&state, Api::Engage, uri.query(), &headers, &body)
}

async fn groups_route(
    AxumState(state): Shared,
    reset: Option<Extension<ResetSignal>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = faults(&state, Endpoint::Groups, reset.as_deref()).await {
        return response;
    }
    profiles::handle(&state, Api::Groups, uri.query(), &headers, &body)
}

async fn me_route(
    AxumState(state): Shared,
    reset: Option<Extension<ResetSignal>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = faults(&state, Endpoint::Me, reset.as_deref()).await {
        return response;
    }
    me::handle(&state, &headers)
}

/// Accepts connections until `shutdown`, then lets open requests finish (up to a few seconds).
pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        tracker.spawn(connection(stream, router.clone(), shutdown.clone()));
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("emulator stopped with requests still open");
    }
}

async fn connection(stream: TcpStream, router: Router, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    // A second handle on the socket lets a reset set SO_LINGER 0 (an RST, not a FIN) after hyper owns it.
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Ok(handle) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let signal = ResetSignal::default();
    let notify = signal.0.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(signal.clone());
            router.clone().oneshot(request)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        _ = notify.notified() => {
            // Closing both handles with SO_LINGER 0 sends an RST; the request in flight is dropped unanswered.
            let _ = socket2::SockRef::from(&handle).set_linger(Some(Duration::ZERO));
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
