//! The HTTP service: the SPARQL 1.1 Protocol endpoint at `/sparql`, and `/healthz` and
//! `/readyz` for orchestrators. Handlers are thin: they parse the request and call the library
//! (queries run on the blocking pool, since the store is synchronous).

pub mod sparql;

use crate::kb::KnowledgeBase;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub kb: Arc<KnowledgeBase>,
}

/// The routes of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/sparql", get(sparql::get).post(sparql::post))
        .with_state(state)
}

/// Ready when the store answers a query.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let kb = state.kb.clone();
    let answered = tokio::task::spawn_blocking(move || kb.query("ASK { ?s ?p ?o }").is_ok())
        .await
        .unwrap_or(false);
    if answered {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer")
    }
}

/// Serves `state` on `listener` until `shutdown` completes, then lets in-flight requests end.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
