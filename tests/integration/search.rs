//! Semantic search over the bundled KB with the real model (fastembed + ONNX Runtime): the
//! answers a maintenance engineer expects come first, and filters hold in every mode.

use crate::common::bundled;
use crate::embed::fastembed;
use assetkg::index::{
    entity_documents, resolve_asset, EntityIndex, Hit, SearchMode, SearchRequest,
};
use std::sync::OnceLock;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    index: EntityIndex,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let docs = entity_documents(bundled()).expect("documents");
        let index = runtime.block_on(async {
            let index = EntityIndex::open(&dir.path().to_string_lossy())
                .await
                .expect("open");
            index.sync(&docs, fastembed(), false).await.expect("sync");
            index
        });
        Fixture {
            runtime,
            index,
            _dir: dir,
        }
    })
}

fn search(request: SearchRequest) -> Vec<Hit> {
    let f = fixture();
    f.runtime
        .block_on(f.index.search(&request, fastembed()))
        .expect("search")
}

fn asset(name: &str) -> String {
    resolve_asset(bundled(), name)
        .expect("query")
        .unwrap_or_else(|| panic!("no asset {name}"))
}

fn labels(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.label.as_str()).collect()
}

#[test]
fn bearing_wear_on_an_electric_motor_points_to_vibration() {
    for mode in [SearchMode::Hybrid, SearchMode::Vector] {
        let hits = search(
            SearchRequest::new("bearing wear")
                .mode(mode)
                .kinds(["sensor"])
                .asset(asset("electric motor"))
                .limit(5),
        );
        assert_eq!(
            hits.first().map(|h| h.label.as_str()),
            Some("vibration"),
            "{mode:?}: {:?}",
            labels(&hits)
        );
        assert!(hits.iter().all(|h| h.kind == "sensor"));
    }
}

#[test]
fn transformer_gas_alarm_finds_the_buchholz_relay() {
    let hits = search(
        SearchRequest::new("gas collecting in the relay on top of the transformer")
            .kinds(["maintainable_item"])
            .asset(asset("power transformer"))
            .limit(3),
    );
    assert!(
        hits.iter()
            .any(|h| h.label.to_lowercase().contains("buchholz")),
        "{:?}",
        labels(&hits)
    );
}

#[test]
fn a_failure_mode_is_found_by_its_name_and_by_paraphrase() {
    let hits = search(
        SearchRequest::new("compressor stall")
            .kinds(["failure_mode"])
            .limit(3),
    );
    assert_eq!(
        hits.first().map(|h| h.label.as_str()),
        Some("compressor stall"),
        "{:?}",
        labels(&hits)
    );
    let hits = search(
        SearchRequest::new("the gauge shows a value that cannot be right")
            .mode(SearchMode::Vector)
            .kinds(["failure_mode_class"])
            .limit(3),
    );
    assert!(
        hits.iter().any(|h| h.iri.ends_with("/AIR")),
        "{:?}",
        labels(&hits)
    );
}

#[test]
fn lexical_search_matches_words() {
    let hits = search(
        SearchRequest::new("oil debris")
            .mode(SearchMode::Lexical)
            .kinds(["sensor"])
            .limit(3),
    );
    assert_eq!(
        hits.first().map(|h| h.label.as_str()),
        Some("oil debris"),
        "{:?}",
        labels(&hits)
    );
}

#[test]
fn filters_hold_in_every_mode() {
    let pump = asset("pump");
    for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
        let hits = search(
            SearchRequest::new("seal leaking")
                .mode(mode)
                .kinds(["maintainable_item", "failure_mode"])
                .asset(pump.clone())
                .limit(10),
        );
        assert!(!hits.is_empty(), "{mode:?}");
        for h in &hits {
            assert!(
                h.kind == "maintainable_item" || h.kind == "failure_mode",
                "{mode:?}: {h:?}"
            );
            assert!(
                h.assets.contains(&pump),
                "{mode:?}: {} is not a pump entity",
                h.iri
            );
        }
    }
}

/// The in-memory view of the table and LanceDB's own queries rank alike: the same hits in
/// the same order (up to ties) with the same scores, in every mode and with every filter.
#[test]
fn the_in_memory_view_ranks_like_lancedb() {
    let f = fixture();
    let (lancedb, dir_uri) = f.runtime.block_on(async {
        let uri = f.index.uri().to_owned();
        let lancedb = EntityIndex::open(&uri)
            .await
            .expect("open")
            .with_memory_view_max_rows(0);
        (lancedb, uri)
    });
    let pump = asset("pump");
    let motor = asset("electric motor");
    let requests = [
        SearchRequest::new("bearing wear"),
        SearchRequest::new("oil debris in the gearbox").kinds(["sensor"]),
        SearchRequest::new("seal leaking")
            .kinds(["maintainable_item", "failure_mode"])
            .asset(pump),
        SearchRequest::new("winding insulation breakdown")
            .asset(motor)
            .limit(20),
        SearchRequest::new("overheating")
            .kinds(["failure_mode_class"])
            .limit(3),
    ];
    for base in requests {
        for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
            let request = base.clone().mode(mode);
            let (memory, stored) = f.runtime.block_on(async {
                (
                    f.index.search(&request, fastembed()).await.expect("view"),
                    lancedb
                        .search(&request, fastembed())
                        .await
                        .expect("lancedb"),
                )
            });
            let what = format!("{dir_uri} {mode:?} {:?}", request.text);
            assert_eq!(memory.len(), stored.len(), "{what}");
            assert!(!memory.is_empty(), "{what}");
            for (i, (m, s)) in memory.iter().zip(&stored).enumerate() {
                let close = (m.score - s.score).abs() <= 1e-3 * s.score.abs().max(1.0);
                assert!(
                    close,
                    "{what}: rank {i}: {} {} vs {} {}",
                    m.iri, m.score, s.iri, s.score
                );
                if m.iri != s.iri {
                    // Only a tie may order two hits differently.
                    let tied = stored
                        .iter()
                        .any(|o| o.iri == m.iri && (o.score - m.score).abs() <= 1e-3);
                    assert!(tied, "{what}: rank {i}: {} vs {}", m.iri, s.iri);
                }
            }
        }
    }
}
