//! The HTTP service, the only module that knows HTTP: GraphiQL at `/`, GraphQL at `/graphql`,
//! the SPARQL 1.1 Protocol at `/sparql`, `/healthz` and `/readyz` for orchestrators and
//! `/metrics` for Prometheus. Every route but the health checks goes through bearer-token
//! authentication; all of them through the body limit, the request timeout, CORS and request
//! tracing. Handlers stay thin: parse, call the library, map errors.

pub mod auth;
pub mod config;
pub mod graphql;
pub mod metrics;
pub mod sparql;

use crate::embed::Embedder;
use crate::index::{entity_documents, EntityDoc, EntityIndex, QueryVector, SyncReport};
use crate::kb::{KbError, KbResult, KnowledgeBase, QueryOutcome};
use crate::retrieval::facts::GraphHeaders;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse, GraphQLSubscription};
use auth::{Principal, TokenTable};
use axum::extract::{Extension, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use config::ServiceConfig;
use graphql::AssetSchema;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Everything the handlers and resolvers reach: the KB, the index and the model that embeds
/// queries (the one the index was built with), the configuration and the metrics.
pub struct Services {
    /// The knowledge base.
    pub kb: Arc<KnowledgeBase>,
    /// The entity index.
    pub index: Arc<EntityIndex>,
    /// The embedding model of the index.
    pub embedder: Arc<dyn Embedder>,
    /// The service configuration.
    pub config: ServiceConfig,
    /// The metrics.
    pub metrics: metrics::Metrics,
    /// The index documents of the current KB (asset membership for list filters).
    docs: RwLock<Arc<Vec<EntityDoc>>>,
    /// Fact-graph headers, read once per KB version.
    headers: RwLock<Option<(String, Arc<GraphHeaders>)>>,
    /// Held by every write (edit + index refresh), so the index follows the KB edit by edit.
    pub(crate) write: tokio::sync::Mutex<()>,
    /// The agent's models (loaded on the first question) and entity names.
    agent_models: crate::agent::ModelCache,
    agent_names: crate::agent::LinkerCache,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// An error while starting the service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The KB could not be read.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// The index could not be brought in line with the KB.
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    /// A blocking task failed.
    #[error("startup task failed: {0}")]
    Task(String),
}

impl Services {
    /// Services over `kb` and `index`; the index is first brought in line with the KB (only
    /// entities whose documents changed are embedded).
    pub async fn start(
        kb: Arc<KnowledgeBase>,
        index: EntityIndex,
        embedder: Arc<dyn Embedder>,
        config: ServiceConfig,
    ) -> Result<Arc<Self>, StartError> {
        // Concurrent requests' query texts are embedded together (see embed::batch).
        let embedder: Arc<dyn Embedder> =
            Arc::new(crate::embed::batch::BatchingEmbedder::new(embedder));
        let services = Arc::new(Self {
            kb,
            index: Arc::new(index),
            embedder,
            config,
            agent_models: crate::agent::ModelCache::default(),
            agent_names: crate::agent::LinkerCache::default(),
            metrics: metrics::Metrics::new(),
            docs: RwLock::new(Arc::new(Vec::new())),
            headers: RwLock::new(None),
            write: tokio::sync::Mutex::new(()),
        });
        let report = services.sync_index().await?;
        tracing::info!(
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            unchanged = report.unchanged,
            "index in line with the KB"
        );
        Ok(services)
    }

    /// Re-reads the documents and syncs the index; returns the rows written.
    async fn sync_index(&self) -> Result<SyncReport, StartError> {
        let kb = self.kb.clone();
        let docs = tokio::task::spawn_blocking(move || entity_documents(&kb))
            .await
            .map_err(|e| StartError::Task(e.to_string()))??;
        let report = self
            .index
            .sync(&docs, self.embedder.as_ref(), false)
            .await?;
        if let Ok(mut slot) = self.docs.write() {
            *slot = Arc::new(docs);
        }
        Ok(report)
    }

    /// [`Self::sync_index`] for resolvers: the number of rows added, updated or removed.
    pub async fn refresh_index(&self) -> async_graphql::Result<u64> {
        match self.sync_index().await {
            Ok(report) => Ok((report.added + report.updated + report.removed) as u64),
            Err(StartError::Kb(e)) => Err(graphql::kb_error(e)),
            Err(e) => Err(graphql::internal(e)),
        }
    }

    /// IRIs of the entities that belong to the equipment class `asset`.
    pub fn members_of(&self, asset: &str) -> Vec<String> {
        let docs = self.docs.read().map(|d| d.clone()).unwrap_or_default();
        docs.iter()
            .filter(|d| d.iri == asset || d.assets.iter().any(|a| a == asset))
            .map(|d| d.iri.clone())
            .collect()
    }

    /// The fact-graph headers of the current KB version.
    pub fn graph_headers(&self) -> KbResult<Arc<GraphHeaders>> {
        let version = self.kb.current_version()?;
        if let Ok(cached) = self.headers.read() {
            if let Some((v, headers)) = cached.as_ref() {
                if *v == version {
                    return Ok(headers.clone());
                }
            }
        }
        let headers = Arc::new(GraphHeaders::read(&self.kb)?);
        if let Ok(mut slot) = self.headers.write() {
            *slot = Some((version, headers.clone()));
        }
        Ok(headers)
    }

    /// Embeds a query text on the blocking pool (where concurrent texts share batches).
    pub async fn embed_query(&self, text: String) -> async_graphql::Result<QueryVector> {
        let embedder = self.embedder.clone();
        let vector = tokio::task::spawn_blocking(move || {
            crate::index::embed_query(embedder.as_ref(), &text).map(|vector| QueryVector {
                model_id: embedder.model_id().to_owned(),
                vector,
            })
        })
        .await
        .map_err(graphql::internal)?;
        vector.map_err(graphql::index_error)
    }

    /// Runs a read-only SPARQL query under the configured time and size limits.
    pub async fn run_sparql(&self, query: String) -> KbResult<QueryOutcome> {
        let limits = graphql::query::sparql_limits(self);
        let cancel = limits.cancel.clone();
        let timeout = limits.timeout;
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            cancel.cancel();
        });
        let kb = self.kb.clone();
        let result = tokio::task::spawn_blocking(move || kb.query_limited(&query, &limits)).await;
        timer.abort();
        result.map_err(|e| KbError::QueryEvaluation(format!("query task failed: {e}")))?
    }
}

impl Services {
    /// The agent of `ask`, as the configuration says; its tools read this service's KB and index.
    pub async fn agent(self: &Arc<Self>) -> async_graphql::Result<crate::agent::Agent> {
        let settings = self.config.agent.clone();
        let backend = settings
            .backend()
            .map_err(|e| graphql::client_error("UNAVAILABLE", e))?;
        // Reading the names (once per KB version) and the model (once) is blocking work.
        let services = self.clone();
        let (linker, policy) = tokio::task::spawn_blocking(move || {
            let linker = services
                .agent_names
                .get(&services.kb)
                .map_err(graphql::kb_error)?;
            let policy = services
                .agent_models
                .policy(&backend)
                .map_err(|e| graphql::client_error("UNAVAILABLE", format!("agent model: {e}")))?;
            Ok::<_, async_graphql::Error>((linker, policy))
        })
        .await
        .map_err(graphql::internal)??;
        let kb = self.kb.clone();
        Ok(crate::agent::Agent {
            policy,
            tools: crate::agent::Toolbox {
                kb,
                index: self.index.clone(),
                embedder: self.embedder.clone(),
                linker,
                limits: crate::agent::ToolLimits {
                    items: 25,
                    sparql_rows: self.config.limits.sparql_max_results.min(50),
                    sparql_timeout: self.config.limits.sparql_timeout(),
                    ..crate::agent::ToolLimits::default()
                },
            },
            budget: crate::agent::Budget {
                max_steps: settings.max_steps,
                time: self.config.limits.request_timeout(),
                ..crate::agent::Budget::default()
            },
        })
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The services.
    pub services: Arc<Services>,
    /// The GraphQL schema (holding the services).
    pub schema: AssetSchema,
}

impl AppState {
    /// The state of a server over `services`.
    pub fn new(services: Arc<Services>) -> Self {
        let schema = graphql::build_schema(Some(services.clone()), &services.config.limits);
        Self { services, schema }
    }
}

/// The routes of the service, with authentication, limits, CORS and tracing.
pub fn router(state: AppState) -> Router {
    let config = &state.services.config;
    let tokens = Arc::new(TokenTable::new(config));
    let protected = Router::new()
        .route("/graphql", get(graphql_handler).post(graphql_handler))
        // Subscriptions (the agent's steps) over WebSocket (graphql-transport-ws).
        .route_service(
            "/graphql/ws",
            GraphQLSubscription::new(state.schema.clone()),
        )
        .route("/sparql", get(sparql::get).post(sparql::post))
        .route("/metrics", get(metrics_handler))
        .route_layer(middleware::from_fn_with_state(tokens, auth::authenticate));
    Router::new()
        .route("/", get(graphiql))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .merge(protected)
        .with_state(state.clone())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.limits.request_timeout(),
        ))
        .layer(RequestBodyLimitLayer::new(config.limits.body_bytes))
        .layer(cors(config))
        .layer(TraceLayer::new_for_http())
}

fn cors(config: &ServiceConfig) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            axum::http::header::ACCEPT,
        ]);
    if config.cors_origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(origins)
    }
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// `/graphql`: the request runs with the caller attached; the operation label of the metrics
/// is its root fields.
async fn graphql_handler(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let request = request.into_inner();
    let operation = operation_label(&request.query, request.operation_name.as_deref());
    let started = Instant::now();
    let response = state.schema.execute(request.data(principal)).await;
    let outcome = if response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| c.to_string().contains("INTERNAL"))
    }) {
        "server_error"
    } else if response.is_err() {
        "client_error"
    } else {
        "ok"
    };
    state
        .services
        .metrics
        .observe(&operation, outcome, started.elapsed());
    response.into()
}

/// `graphql:` and the sorted root fields of the operation (`graphql:search`).
fn operation_label(query: &str, operation_name: Option<&str>) -> String {
    use async_graphql::parser::types::{DocumentOperations, Selection};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return "graphql:invalid".into();
    };
    let operation = match &document.operations {
        DocumentOperations::Single(op) => Some(&op.node),
        DocumentOperations::Multiple(ops) => operation_name
            .and_then(|n| ops.get(n))
            .or_else(|| ops.values().next())
            .map(|op| &op.node),
    };
    let mut fields: Vec<String> = operation
        .map(|op| {
            op.selection_set
                .node
                .items
                .iter()
                .filter_map(|item| match &item.node {
                    Selection::Field(field) => Some(field.node.name.node.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    fields.sort();
    fields.dedup();
    fields.truncate(3);
    format!("graphql:{}", fields.join("+"))
}

/// `/metrics`: the Prometheus text format, with the store and index sizes read now.
async fn metrics_handler(State(state): State<AppState>) -> Response {
    let kb = state.services.kb.clone();
    let quads = tokio::task::spawn_blocking(move || kb.backend().quad_count().unwrap_or(0))
        .await
        .unwrap_or(0);
    let rows = state.services.index.len().await.unwrap_or(0);
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.services.metrics.render(quads, rows),
    )
        .into_response()
}

/// Ready when the store answers a query.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let kb = state.services.kb.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_name_root_fields() {
        assert_eq!(
            operation_label("{ search(text: \"x\") { iri } kbVersion }", None),
            "graphql:kbVersion+search"
        );
        assert_eq!(
            operation_label(
                "query A { entity(iri: \"x\") { iri } } mutation B { reindex }",
                Some("B")
            ),
            "graphql:reindex"
        );
        assert_eq!(operation_label("{", None), "graphql:invalid");
    }
}
