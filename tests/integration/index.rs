//! The entity index over the bundled KB: document extraction, incremental sync into a LanceDB
//! directory, and the three search modes with their filters. A deterministic test embedder
//! (hashed character trigrams) makes the mechanics exact; real-model quality is tested apart.

use crate::common::bundled;
use assetkg::embed::{l2_normalize, EmbedResult, Embedder};
use assetkg::index::{
    entity_documents, resolve_asset, EntityDoc, EntityIndex, Hit, IndexError, SearchMode,
    SearchRequest, KINDS,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const CLS: &str = "https://w3id.org/assetkg/kb/class/";
const DIM: usize = 256;

/// Hashed character trigrams of the lower-cased text, L2-normalised; counts the texts it embeds.
struct TrigramEmbedder {
    model_id: String,
    embedded: AtomicUsize,
}

impl TrigramEmbedder {
    fn new(model_id: &str) -> Self {
        Self {
            model_id: model_id.to_owned(),
            embedded: AtomicUsize::new(0),
        }
    }

    /// Texts embedded since the last call.
    fn take_count(&self) -> usize {
        self.embedded.swap(0, Ordering::SeqCst)
    }
}

impl Embedder for TrigramEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>> {
        self.embedded.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|text| {
                let chars: Vec<char> = format!("  {}  ", text.to_lowercase()).chars().collect();
                let mut v = vec![0.0f32; DIM];
                for w in chars.windows(3) {
                    // FNV-1a: stable across runs and platforms.
                    let mut h: u32 = 0x811c_9dc5;
                    for c in w {
                        h = (h ^ *c as u32).wrapping_mul(0x0100_0193);
                    }
                    v[h as usize % DIM] += 1.0;
                }
                l2_normalize(&mut v);
                v
            })
            .collect())
    }
}

fn cls(local: &str) -> String {
    format!("{CLS}{local}")
}

fn docs() -> Vec<EntityDoc> {
    entity_documents(bundled()).expect("documents")
}

fn doc<'a>(docs: &'a [EntityDoc], iri_suffix: &str) -> &'a EntityDoc {
    docs.iter()
        .find(|d| d.iri.ends_with(iri_suffix))
        .unwrap_or_else(|| panic!("no document {iri_suffix}"))
}

fn uri(dir: &tempfile::TempDir) -> String {
    dir.path()
        .join("index")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// A fresh index in `dir`, synced with every document of the bundled KB.
async fn synced(
    dir: &tempfile::TempDir,
    embedder: &TrigramEmbedder,
) -> (EntityIndex, Vec<EntityDoc>) {
    let docs = docs();
    let index = EntityIndex::open(&uri(dir)).await.expect("open");
    index.sync(&docs, embedder, false).await.expect("sync");
    (index, docs)
}

fn iris(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.iri.as_str()).collect()
}

#[test]
fn documents_cover_every_kind_of_the_kb() {
    let docs = docs();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &docs {
        *counts.entry(d.kind.as_str()).or_default() += 1;
    }
    let expected = [
        ("equipment_category", 10),
        ("equipment_class", 81),
        ("equipment_type", 316),
        ("subunit", 201),
        ("maintainable_item", 851),
        ("component_kind", 60),
        ("failure_mode_class", 45),
        ("failure_mode", 90),
        ("failure_description", 250),
        ("sensor", 54),
    ];
    assert_eq!(counts, BTreeMap::from(expected));
    assert_eq!(KINDS.len(), expected.len());

    // Sorted by IRI, one document per entity, every one hashed.
    assert!(docs.windows(2).all(|w| w[0].iri < w[1].iri));
    assert!(docs
        .iter()
        .all(|d| d.content_hash.len() == 64 && !d.label.is_empty()));

    let sensor = doc(&docs, "/sensor/oil-debris");
    assert!(
        sensor.text.starts_with("Sensor: oil debris. "),
        "{}",
        sensor.text
    );
    assert!(sensor.text.contains(" Also called: "), "{}", sensor.text);
    assert!(sensor.assets.contains(&cls("pump")));
    assert_eq!(
        sensor.vetting_status, "vetted",
        "labels come from the matrix"
    );

    let fmc = doc(&docs, "/failure-mode-class/AIR");
    assert!(fmc
        .text
        .starts_with("Failure class: abnormal instrument reading (AIR). "));
    assert!(fmc.assets.contains(&cls("pump")) && fmc.assets.len() > 10);

    let item = doc(&docs, "/item/compressor--power-transmission--coupling");
    assert!(item
        .text
        .starts_with("Component: coupling (power transmission of compressor). "));
    assert_eq!(item.assets, [cls("compressor")]);
    assert_eq!(item.vetting_status, "proposed");

    let class = doc(&docs, "/class/electric-motor");
    assert!(class
        .text
        .starts_with("Equipment class: electric motor (rotating equipment). "));
    assert_eq!(class.assets, [cls("electric-motor")]);

    let typ = doc(&docs, "/type/compressor--centrifugal");
    assert!(typ
        .text
        .starts_with("Equipment type: centrifugal compressor (type of compressor). "));
    assert_eq!(typ.assets, [cls("compressor")]);

    let subunit = doc(&docs, "/subunit/compressor--power-transmission");
    assert!(subunit
        .text
        .starts_with("Subunit: power transmission (of compressor). "));

    let fm = doc(&docs, "/failure-mode/bearing-wear");
    assert!(fm.assets.contains(&cls("pump")));
    assert_eq!(fm.vetting_status, "vetted");

    assert!(docs
        .iter()
        .filter(|d| d.kind == "failure_description" || d.kind == "equipment_category")
        .all(|d| d.assets.is_empty()));
    assert!(docs
        .iter()
        .filter(|d| matches!(
            d.kind.as_str(),
            "equipment_type" | "subunit" | "maintainable_item"
        ))
        .all(|d| d.assets.len() == 1));
    // Every sensor is monitored on at least one asset of the matrix.
    assert!(docs
        .iter()
        .filter(|d| d.kind == "sensor")
        .all(|d| !d.assets.is_empty()));

    // Deterministic: a second extraction is identical.
    assert_eq!(docs, self::docs());
}

#[test]
fn assets_resolve_by_label_synonym_prefixed_name_iri_and_slug() {
    let kb = bundled();
    let motor = Some(cls("electric-motor"));
    for name in [
        "electric motor",
        "Electric Motor",
        "motor",
        "cls:electric-motor",
        "https://w3id.org/assetkg/kb/class/electric-motor",
        "electric-motor",
    ] {
        assert_eq!(resolve_asset(kb, name).expect("query"), motor, "{name}");
    }
    assert_eq!(resolve_asset(kb, "flux capacitor").expect("query"), None);
    assert_eq!(resolve_asset(kb, "sensor:oil-debris").expect("query"), None);
    assert_eq!(resolve_asset(kb, "").expect("query"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_embeds_only_what_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = TrigramEmbedder::new("trigram-256");
    let docs = docs();
    let n = docs.len();
    let index = EntityIndex::open(&uri(&dir)).await.expect("open");
    assert_eq!(index.len().await.expect("len"), 0);
    let nothing = index
        .search(&SearchRequest::new("pump"), &embedder)
        .await
        .expect("search before the first sync");
    assert!(nothing.is_empty());

    // First sync: everything is new.
    let started = Instant::now();
    let report = index.sync(&docs, &embedder, false).await.expect("sync");
    eprintln!("full sync of {n} documents: {:?}", started.elapsed());
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (n, 0, 0, 0)
    );
    assert!(!report.model_rebuild);
    assert_eq!(embedder.take_count(), n);
    assert_eq!(index.len().await.expect("len"), n);

    // Again, from a fresh handle: nothing to do, nothing embedded.
    let index = EntityIndex::open(&uri(&dir)).await.expect("reopen");
    let started = Instant::now();
    let report = index.sync(&docs, &embedder, false).await.expect("resync");
    eprintln!("no-op sync: {:?}", started.elapsed());
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (0, 0, 0, n)
    );
    assert!(report.is_noop());
    assert_eq!(embedder.take_count(), 0);

    // One document changes: exactly that one is re-embedded, and its new text is searchable.
    let mut changed = docs.clone();
    let target = changed
        .iter_mut()
        .find(|d| d.iri.ends_with("/sensor/oil-debris"))
        .expect("oil debris");
    target.text.push_str(" Zyxwvut marker.");
    target.rehash();
    let changed_iri = target.iri.clone();
    let report = index
        .sync(&changed, &embedder, false)
        .await
        .expect("update");
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (0, 1, 0, n - 1)
    );
    assert_eq!(embedder.take_count(), 1);
    assert_eq!(index.len().await.expect("len"), n);
    let hits = index
        .search(
            &SearchRequest::new("zyxwvut").mode(SearchMode::Lexical),
            &embedder,
        )
        .await
        .expect("search");
    assert_eq!(iris(&hits), [changed_iri.as_str()]);

    // One document disappears: its row is deleted, nothing is embedded.
    let removed = changed.remove(0);
    let report = index
        .sync(&changed, &embedder, false)
        .await
        .expect("remove");
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (0, 0, 1, n - 1)
    );
    assert_eq!(embedder.take_count(), 0);
    assert_eq!(index.len().await.expect("len"), n - 1);
    let hits = index
        .search(
            &SearchRequest::new(removed.label.clone())
                .mode(SearchMode::Lexical)
                .limit(n),
            &embedder,
        )
        .await
        .expect("search");
    assert!(!iris(&hits).contains(&removed.iri.as_str()));

    // It comes back: one row added.
    let report = index.sync(&docs, &embedder, false).await.expect("re-add");
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (1, 1, 0, n - 2)
    );
    assert_eq!(embedder.take_count(), 2);

    // A query embedder of another model is refused for vector search.
    let other = TrigramEmbedder::new("trigram-256-v2");
    let refused = index
        .search(&SearchRequest::new("pump").mode(SearchMode::Vector), &other)
        .await;
    assert!(
        matches!(refused, Err(IndexError::ModelMismatch { .. })),
        "{refused:?}"
    );

    // Another model: everything is rebuilt with it.
    let started = Instant::now();
    let report = index.sync(&docs, &other, false).await.expect("rebuild");
    eprintln!("model rebuild: {:?}", started.elapsed());
    assert!(report.model_rebuild);
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (0, n, 0, 0)
    );
    assert_eq!(other.take_count(), n);
    assert_eq!(index.len().await.expect("len"), n);
    let hits = index
        .search(&SearchRequest::new("pump").mode(SearchMode::Vector), &other)
        .await
        .expect("search with the new model");
    assert_eq!(hits.len(), 10);

    // Duplicate IRIs are refused before anything is written.
    let mut twice = docs.clone();
    twice.push(docs[0].clone());
    let refused = index.sync(&twice, &other, false).await;
    assert!(
        matches!(refused, Err(IndexError::Documents(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_respects_kind_and_asset_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = TrigramEmbedder::new("trigram-256");
    let (index, _) = synced(&dir, &embedder).await;
    let transformer = cls("power-transformer");
    for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
        let all = index
            .search(
                &SearchRequest::new("bearing wear vibration").mode(mode),
                &embedder,
            )
            .await
            .expect("search");
        assert_eq!(all.len(), 10, "{mode:?}");
        assert!(
            all.windows(2).all(|w| w[0].score >= w[1].score),
            "{mode:?}: ranked"
        );

        let sensors = index
            .search(
                &SearchRequest::new("bearing wear vibration")
                    .mode(mode)
                    .kinds(["sensor"])
                    .limit(20),
                &embedder,
            )
            .await
            .expect("search");
        assert!(!sensors.is_empty(), "{mode:?}");
        assert!(sensors.iter().all(|h| h.kind == "sensor"), "{mode:?}");

        let items = index
            .search(
                &SearchRequest::new("oil leak from the tank")
                    .mode(mode)
                    .kinds(["maintainable_item", "subunit"])
                    .asset(&transformer)
                    .limit(25),
                &embedder,
            )
            .await
            .expect("search");
        assert!(!items.is_empty(), "{mode:?}");
        assert!(
            items
                .iter()
                .all(|h| (h.kind == "maintainable_item" || h.kind == "subunit")
                    && h.assets.contains(&transformer)),
            "{mode:?}: {:?}",
            iris(&items)
        );

        let on_pump = index
            .search(
                &SearchRequest::new("temperature")
                    .mode(mode)
                    .asset(cls("pump")),
                &embedder,
            )
            .await
            .expect("search");
        assert!(!on_pump.is_empty(), "{mode:?}");
        assert!(
            on_pump.iter().all(|h| h.assets.contains(&cls("pump"))),
            "{mode:?}"
        );

        // A quote in a filter value is escaped, not an SQL error.
        let none = index
            .search(
                &SearchRequest::new("temperature")
                    .mode(mode)
                    .asset("o'brien"),
                &embedder,
            )
            .await
            .expect("quoted asset");
        assert!(none.is_empty(), "{mode:?}");
    }

    let bad = index
        .search(&SearchRequest::new("pump").kinds(["pumps"]), &embedder)
        .await;
    assert!(matches!(bad, Err(IndexError::Request(_))), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lexical_search_finds_the_buchholz_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = TrigramEmbedder::new("trigram-256");
    let (index, _) = synced(&dir, &embedder).await;
    let hits = index
        .search(
            &SearchRequest::new("Buchholz").mode(SearchMode::Lexical),
            &embedder,
        )
        .await
        .expect("search");
    assert!(!hits.is_empty());
    assert!(hits
        .iter()
        .all(|h| h.text.to_lowercase().contains("buchholz") && h.score > 0.0));
    assert!(iris(&hits).contains(&"https://w3id.org/assetkg/kb/item/power-transformer--protection-and-monitoring--buchholz-relay"));

    let items = index
        .search(
            &SearchRequest::new("Buchholz")
                .mode(SearchMode::Lexical)
                .kinds(["maintainable_item"]),
            &embedder,
        )
        .await
        .expect("search");
    assert!(!items.is_empty());
    assert!(items.iter().all(|h| h.assets == [cls("power-transformer")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_fuses_the_vector_and_lexical_rankings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = TrigramEmbedder::new("trigram-256");
    let (index, _) = synced(&dir, &embedder).await;
    let limit = 10;
    let request = |mode| SearchRequest::new("Buchholz gas relay alarm").mode(mode);
    let hybrid = index
        .search(&request(SearchMode::Hybrid).limit(limit), &embedder)
        .await
        .expect("hybrid");
    // The halves as the fusion sees them: each fetched four times deeper than the limit.
    let vector = index
        .search(&request(SearchMode::Vector).limit(4 * limit), &embedder)
        .await
        .expect("vector");
    let lexical = index
        .search(&request(SearchMode::Lexical).limit(4 * limit), &embedder)
        .await
        .expect("lexical");
    assert_eq!(hybrid.len(), limit);

    let rank = |hits: &[Hit], iri: &str| hits.iter().position(|h| h.iri == iri);
    for hit in &hybrid {
        let expected: f32 = [rank(&vector, &hit.iri), rank(&lexical, &hit.iri)]
            .into_iter()
            .flatten()
            .map(|r| 1.0 / (60.0 + r as f32 + 1.0))
            .sum();
        assert!(expected > 0.0, "{} is in neither ranking", hit.iri);
        assert!((hit.score - expected).abs() < 1e-6, "{}", hit.iri);
    }
    // The fused ranking is exactly the best `limit` of the union of both lists by summed
    // reciprocal rank (ties by IRI), so hits found by one side only compete on equal terms.
    // Ties go to the better best rank, then to the vector list, then by IRI.
    let mut union: Vec<(f32, (usize, usize), &str)> = iris(&vector)
        .into_iter()
        .chain(iris(&lexical))
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(|iri| {
            let ranks = [rank(&vector, iri), rank(&lexical, iri)];
            let score: f32 = ranks
                .iter()
                .flatten()
                .map(|r| 1.0 / (60.0 + *r as f32 + 1.0))
                .sum();
            let best = (0..2)
                .filter_map(|list| ranks[list].map(|r| (r, list)))
                .min()
                .expect("in one list at least");
            (score, best, iri)
        })
        .collect();
    union.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(b.2))
    });
    let expected: Vec<&str> = union.iter().take(limit).map(|(_, _, iri)| *iri).collect();
    assert_eq!(iris(&hybrid), expected);
    let vector_iris: BTreeSet<&str> = iris(&vector).into_iter().collect();
    let lexical_iris: BTreeSet<&str> = iris(&lexical).into_iter().collect();
    assert!(
        union
            .iter()
            .any(|(_, _, iri)| lexical_iris.contains(iri) != vector_iris.contains(iri)),
        "the two rankings disagree somewhere, so the fusion has work to do"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_set_of_documents_empties_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = TrigramEmbedder::new("trigram-256");
    let index = EntityIndex::open(&uri(&dir)).await.expect("open");
    let some: Vec<EntityDoc> = docs().into_iter().filter(|d| d.kind == "sensor").collect();
    let report = index.sync(&some, &embedder, false).await.expect("sync");
    assert_eq!(report.added, 54);

    let report = index.sync(&[], &embedder, false).await.expect("empty sync");
    assert_eq!((report.removed, report.unchanged), (54, 0));
    assert_eq!(index.len().await.expect("len"), 0);
    for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
        let hits = index
            .search(&SearchRequest::new("vibration").mode(mode), &embedder)
            .await
            .expect("search of an empty table");
        assert!(hits.is_empty(), "{mode:?}");
    }

    // A first sync with nothing creates an empty, searchable table too.
    let other = tempfile::tempdir().expect("tempdir");
    let index = EntityIndex::open(&uri(&other)).await.expect("open");
    let report = index
        .sync(&[], &embedder, false)
        .await
        .expect("empty first sync");
    assert!(report.is_noop());
    let hits = index
        .search(
            &SearchRequest::new("vibration").mode(SearchMode::Lexical),
            &embedder,
        )
        .await
        .expect("search");
    assert!(hits.is_empty());
}
