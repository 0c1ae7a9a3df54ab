//! Prometheus metrics: requests and latency per operation (`graphql:<root fields>`,
//! `sparql:query`, `sparql:update`, …) with their outcome, and the sizes of the store and the
//! index, read when `/metrics` is scraped.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type Labels = Vec<(String, String)>;

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    store_quads: Gauge,
    index_rows: Gauge,
    kb_edits: Counter,
    reembedded: Counter<u64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("assetkg");
        let requests = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let store_quads = Gauge::default();
        let index_rows = Gauge::default();
        let kb_edits = Counter::default();
        let reembedded = Counter::<u64, AtomicU64>::default();
        registry.register(
            "requests",
            "Requests by operation and outcome (ok, client_error, server_error)",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by operation",
            latency.clone(),
        );
        registry.register(
            "store_quads",
            "Quads in the store (fact graphs, their merge and system graphs)",
            store_quads.clone(),
        );
        registry.register("index_rows", "Rows of the entity index", index_rows.clone());
        registry.register("kb_edits", "Committed curation edits", kb_edits.clone());
        registry.register(
            "reembedded_entities",
            "Entities embedded again after curation edits",
            reembedded.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            store_quads,
            index_rows,
            kb_edits,
            reembedded,
        }
    }

    /// Records one request of `operation` that took `elapsed` and ended with `outcome`.
    pub fn observe(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&vec![
                ("operation".to_owned(), operation.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("operation".to_owned(), operation.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    /// Records a committed edit that re-embedded `entities` index rows.
    pub fn edit(&self, entities: u64) {
        self.kb_edits.inc();
        self.reembedded.inc_by(entities);
    }

    /// The text exposition, with the sizes given.
    pub fn render(&self, store_quads: usize, index_rows: usize) -> String {
        self.store_quads
            .set(i64::try_from(store_quads).unwrap_or(i64::MAX));
        self.index_rows
            .set(i64::try_from(index_rows).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The outcome label of an HTTP status.
pub fn outcome(status: axum::http::StatusCode) -> &'static str {
    if status.is_server_error() {
        "server_error"
    } else if status.is_client_error() {
        "client_error"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_operations_and_sizes() {
        let metrics = Metrics::new();
        metrics.observe("graphql:search", "ok", Duration::from_millis(3));
        metrics.observe("graphql:search", "ok", Duration::from_millis(5));
        let text = metrics.render(42, 7);
        assert!(
            text.contains("assetkg_requests_total{operation=\"graphql:search\",outcome=\"ok\"} 2")
        );
        assert!(
            text.contains("assetkg_request_duration_seconds_count{operation=\"graphql:search\"} 2")
        );
        assert!(text.contains("assetkg_store_quads 42"));
        assert!(text.contains("assetkg_index_rows 7"));
    }
}
