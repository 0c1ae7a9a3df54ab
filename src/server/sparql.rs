//! The SPARQL 1.1 Protocol, query operation: `GET /sparql?query=…`, `POST` with an
//! `application/sparql-query` body or a `query=…` form. Results by content negotiation: SPARQL
//! JSON, XML, CSV or TSV for SELECT and ASK; Turtle or N-Triples for CONSTRUCT and DESCRIBE.
//! The endpoint is read-only: an update (form field `update=` or an
//! `application/sparql-update` body) is refused with 403.

use super::AppState;
use crate::kb::{KbError, OutputFormat, QueryOutcome};
use axum::body::Bytes;
use axum::extract::{Query, State};
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
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    answer(state, &headers, params).await
}

/// `POST /sparql` with a query body or form.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
        "application/sparql-update" => return read_only(),
        other => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "Content-Type {other:?}: send application/sparql-query or \
                     application/x-www-form-urlencoded"
                ),
            )
        }
    };
    answer(state, &headers, params).await
}

async fn answer(state: AppState, headers: &HeaderMap, params: Params) -> Response {
    if params.update.is_some() {
        return read_only();
    }
    if params.default_graph_uri.is_some() || params.named_graph_uri.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "default-graph-uri and named-graph-uri are not supported: the default graph is the \
             union of the fact graphs; use GRAPH in the query to address one",
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
    let kb = state.kb.clone();
    let outcome = match tokio::task::spawn_blocking(move || kb.query(&query)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(KbError::QuerySyntax(message))) => {
            return error(StatusCode::BAD_REQUEST, &format!("query syntax: {message}"))
        }
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => {
            tracing::error!("query task failed: {e}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
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

fn read_only() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "this endpoint is read-only: SPARQL updates need the curator role",
    )
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
