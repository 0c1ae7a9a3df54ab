//! The SPARQL 1.1 Protocol, query operation: `GET /sparql?query=…`, `POST` with an
//! `application/sparql-query` body or a `query=…` form. Results by content negotiation: SPARQL
//! JSON, XML, CSV or TSV for SELECT and ASK; Turtle or N-Triples for CONSTRUCT and DESCRIBE.
//! Updates (form field `update=` or an `application/sparql-update` body) need the curator role:
//! they run as one validated, recorded curation transaction; anyone else gets 401 or 403.
//! Queries run under the configured time and result-size limits.

use super::auth::Principal;
use super::config::Role;
use super::AppState;
use crate::kb::{KbError, OutputFormat, QueryOutcome};
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The protocol's request parameters (query string or form body).
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    query: Option<String>,
    update: Option<String>,
    #[serde(rename = "default-graph-uri")]
    default_graph_uri: Option<String>,
    #[serde(rename = "named-graph-uri")]
    named_graph_uri: Option<String>,
}

/// Media types of SELECT and ASK results, in the server's order of preference.
const SOLUTION_TYPES: &[(&str, OutputFormat)] = &[
    ("application/sparql-results+json", OutputFormat::Json),
    ("application/json", OutputFormat::Json),
    ("application/sparql-results+xml", OutputFormat::Xml),
    ("text/csv", OutputFormat::Csv),
    ("text/tab-separated-values", OutputFormat::Tsv),
];

/// Media types of CONSTRUCT and DESCRIBE results.
const GRAPH_TYPES: &[(&str, OutputFormat)] = &[
    ("text/turtle", OutputFormat::Turtle),
    ("application/n-triples", OutputFormat::Ntriples),
];

/// `GET /sparql?query=…`.
pub async fn get(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    if params.update.is_some() {
        // The protocol sends updates by POST only.
        return error(
            StatusCode::BAD_REQUEST,
            "SPARQL updates are sent by POST, not GET",
        );
    }
    timed(state, principal, &headers, params).await
}

/// `POST /sparql` with a query body or form.
pub async fn post(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let params = match content_type.as_str() {
        "application/sparql-query" => match String::from_utf8(body.to_vec()) {
            Ok(query) => Params {
                query: Some(query),
                ..Params::default()
            },
            Err(_) => return error(StatusCode::BAD_REQUEST, "the query body is not UTF-8"),
        },
        "application/x-www-form-urlencoded" => match serde_urlencoded::from_bytes(&body) {
            Ok(params) => params,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("malformed form: {e}")),
        },
        "application/sparql-update" => match String::from_utf8(body.to_vec()) {
            Ok(update) => Params {
                update: Some(update),
                ..Params::default()
            },
            Err(_) => return error(StatusCode::BAD_REQUEST, "the update body is not UTF-8"),
        },
        other => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "Content-Type {other:?}: send application/sparql-query, \
                     application/sparql-update or application/x-www-form-urlencoded"
                ),
            )
        }
    };
    timed(state, principal, &headers, params).await
}

/// Runs the request and records it in the metrics.
async fn timed(
    state: AppState,
    principal: Principal,
    headers: &HeaderMap,
    params: Params,
) -> Response {
    let operation = if params.update.is_some() {
        "sparql:update"
    } else {
        "sparql:query"
    };
    let started = std::time::Instant::now();
    let metrics_state = state.clone();
    let response = match params.update.clone() {
        Some(update) => run_update(state, principal, update).await,
        None => answer(state, headers, params).await,
    };
    metrics_state.services.metrics.observe(
        operation,
        super::metrics::outcome(response.status()),
        started.elapsed(),
    );
    response
}

/// A SPARQL update by a curator: one validated transaction, recorded with who and when, then
/// the index follows.
async fn run_update(state: AppState, principal: Principal, update: String) -> Response {
    if principal.role.is_none() {
        return error(
            StatusCode::UNAUTHORIZED,
            "SPARQL updates need a bearer token with the curator role",
        );
    }
    if !principal.has(Role::Curator) {
        return error(
            StatusCode::FORBIDDEN,
            &format!(
                "{} has no curator role: SPARQL updates need it",
                principal.name
            ),
        );
    }
    let services = state.services.clone();
    let _guard = services.write.lock().await;
    let kb = services.kb.clone();
    let agent = principal.name.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        kb.apply_update(
            &update,
            &agent,
            "SPARQL update through the protocol endpoint",
        )
    })
    .await;
    match outcome {
        Ok(Ok(outcome)) => {
            let reembedded = match services.refresh_index().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = ?e, "re-indexing after a SPARQL update");
                    return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
                }
            };
            services.metrics.edit(reembedded);
            tracing::info!(version = %outcome.version.id, reembedded, "SPARQL update committed");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(e @ (KbError::Store(_) | KbError::Io { .. }))) => {
            tracing::error!("SPARQL update failed: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => {
            tracing::error!("update task failed: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn answer(state: AppState, headers: &HeaderMap, params: Params) -> Response {
    if params.default_graph_uri.is_some() || params.named_graph_uri.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "default-graph-uri and named-graph-uri are not supported: the default graph is the \
             merge of the fact graphs; use GRAPH in the query to address one",
        );
    }
    let Some(query) = params.query else {
        return error(StatusCode::BAD_REQUEST, "missing the `query` parameter");
    };
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
        .to_owned();
    let outcome = match state.services.run_sparql(query).await {
        Ok(outcome) => outcome,
        Err(KbError::QuerySyntax(message)) => {
            return error(StatusCode::BAD_REQUEST, &format!("query syntax: {message}"))
        }
        Err(e @ KbError::QueryTimeout { .. }) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(e @ (KbError::Store(_) | KbError::Io { .. })) => {
            tracing::error!("query failed: {e}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let offered = match outcome {
        QueryOutcome::Graph(_) => GRAPH_TYPES,
        _ => SOLUTION_TYPES,
    };
    let Some((media_type, format)) = negotiate(&accept, offered) else {
        let types: Vec<&str> = offered.iter().map(|(t, _)| *t).collect();
        return error(
            StatusCode::NOT_ACCEPTABLE,
            &format!(
                "Accept {accept:?}: this result is available as {}",
                types.join(", ")
            ),
        );
    };
    let mut body = Vec::new();
    if let Err(e) = outcome.write(format, &mut body) {
        tracing::error!("writing query results: {e}");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    ([(CONTENT_TYPE, media_type)], body).into_response()
}

/// The offered media type the `Accept` header prefers most (highest q; among equals, the
/// server's order). Hand-written: the `Accept` grammar needed here is a list of media ranges
/// with q-values, and no maintained crate exposes matching against an offer list.
pub fn negotiate(
    accept: &str,
    offered: &[(&'static str, OutputFormat)],
) -> Option<(&'static str, OutputFormat)> {
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim().to_ascii_lowercase();
            if range.is_empty() {
                return None;
            }
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((range, q))
        })
        .collect();
    let quality = |media_type: &str| -> f32 {
        let major = media_type.split('/').next().unwrap_or_default();
        // The most specific matching range decides.
        let exact = ranges.iter().find(|(r, _)| r == media_type);
        let family = ranges.iter().find(|(r, _)| *r == format!("{major}/*"));
        let any = ranges.iter().find(|(r, _)| r == "*/*");
        exact.or(family).or(any).map_or(0.0, |(_, q)| *q)
    };
    let mut best: Option<((&'static str, OutputFormat), f32)> = None;
    for &(media_type, format) in offered {
        let q = quality(media_type);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some(((media_type, format), q));
        }
    }
    best.map(|(offer, _)| offer)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values_then_server_order() {
        let pick = |accept| negotiate(accept, SOLUTION_TYPES).map(|(t, _)| t);
        assert_eq!(pick("*/*"), Some("application/sparql-results+json"));
        assert_eq!(pick("text/csv"), Some("text/csv"));
        assert_eq!(
            pick("application/sparql-results+xml;q=0.9, text/tab-separated-values"),
            Some("text/tab-separated-values")
        );
        assert_eq!(pick("text/*;q=0.5, application/*;q=0.1"), Some("text/csv"));
        assert_eq!(pick("text/turtle"), None);
        assert_eq!(pick("text/csv;q=0"), None);
        let graph = |accept| negotiate(accept, GRAPH_TYPES).map(|(t, _)| t);
        assert_eq!(
            graph("application/n-triples, text/turtle;q=0.5"),
            Some("application/n-triples")
        );
    }
}
