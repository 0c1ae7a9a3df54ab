//! The nine task datasets built from the bundled KB: counts checked against independent SPARQL
//! counts, the split policy, the leakage check (clean on the real splits, and catching leaks
//! injected on purpose), determinism, and the exported files.

use crate::common::bundled;
use assetkg::augment::render::NoDescriptions;
use assetkg::kb::QueryOutcome;
use assetkg::tasks::export::ExportOptions;
use assetkg::tasks::{build, check_leakage, export, Dataset, Split, TaskCode, DEFAULT_SEED};
use oxigraph::model::Term;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

fn dataset() -> &'static Dataset {
    static DATASET: OnceLock<Dataset> = OnceLock::new();
    DATASET.get_or_init(|| build(bundled(), DEFAULT_SEED).expect("tasks build"))
}

/// The single integer a `SELECT (COUNT(…) AS ?n)` returns.
fn count(sparql: &str) -> usize {
    match bundled().query(sparql).expect("count query") {
        QueryOutcome::Solutions { rows, .. } => match &rows[0][0] {
            Some(Term::Literal(l)) => l.value().parse().expect("integer"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn queries(task: TaskCode) -> Vec<&'static assetkg::tasks::TaskQuery> {
    dataset()
        .queries
        .iter()
        .filter(|q| q.task == task)
        .collect()
}

#[test]
fn query_and_pair_counts_match_independent_counts() {
    // (task, distinct queries, query/item pairs), each counted straight from the KB.
    let expected = [
        (
            TaskCode::E2CAT,
            "SELECT (COUNT(DISTINCT ?c) AS ?n) { ?x a akg:EquipmentClass ; akg:inCategory ?c }",
            "SELECT (COUNT(*) AS ?n) { SELECT DISTINCT ?c ?x { ?x a akg:EquipmentClass ; akg:inCategory ?c } }",
        ),
        (
            TaskCode::ES2U,
            "SELECT (COUNT(DISTINCT ?c) AS ?n) { ?i a akg:MaintainableItem ; akg:partOf/akg:subunitOf ?c }",
            "SELECT (COUNT(DISTINCT ?i) AS ?n) { ?i a akg:MaintainableItem ; akg:partOf/akg:subunitOf ?c }",
        ),
        (
            TaskCode::FM2CLS,
            "SELECT (COUNT(DISTINCT ?d) AS ?n) { ?d a akg:FailureDescription ; akg:indicatesFailureModeClass ?c }",
            "SELECT (COUNT(DISTINCT ?d) AS ?n) { ?d a akg:FailureDescription ; akg:indicatesFailureModeClass ?c }",
        ),
        (
            TaskCode::FM2S,
            "SELECT (COUNT(*) AS ?n) { SELECT DISTINCT ?a ?f { ?j akg:judgedAsset ?a ; akg:judgedFailureMode ?f ; akg:relevant true } }",
            "SELECT (COUNT(*) AS ?n) { SELECT DISTINCT ?a ?f ?s { ?j akg:judgedAsset ?a ; akg:judgedFailureMode ?f ; akg:judgedSensor ?s ; akg:relevant true } }",
        ),
        (
            TaskCode::S2FM,
            "SELECT (COUNT(*) AS ?n) { SELECT DISTINCT ?a ?s { ?j akg:judgedAsset ?a ; akg:judgedSensor ?s ; akg:relevant true } }",
            "SELECT (COUNT(*) AS ?n) { SELECT DISTINCT ?a ?f ?s { ?j akg:judgedAsset ?a ; akg:judgedFailureMode ?f ; akg:judgedSensor ?s ; akg:relevant true } }",
        ),
    ];
    for (task, n_queries, n_pairs) in expected {
        let qs = queries(task);
        assert_eq!(qs.len(), count(n_queries), "{task} queries");
        assert_eq!(
            qs.iter().map(|q| q.positives.len()).sum::<usize>(),
            count(n_pairs),
            "{task} pairs"
        );
    }
    // The matrix has ten assets, and every one has relevant sensors.
    assert_eq!(queries(TaskCode::A2S).len(), 10);
    for task in TaskCode::ALL {
        assert!(!queries(task).is_empty(), "{task} is empty");
        assert!(
            queries(task).iter().all(|q| !q.positives.is_empty()),
            "{task}: a query without positives"
        );
    }
}

#[test]
fn expert_not_relevant_judgments_are_hard_negatives() {
    let motor_bearing = queries(TaskCode::FM2S)
        .into_iter()
        .find(|q| q.id == "FM2S:cls:electric-motor+fm:bearing-damage")
        .expect("electric motor / bearing damage");
    let negatives = count(
        "SELECT (COUNT(DISTINCT ?s) AS ?n) { ?j akg:judgedAsset cls:electric-motor ; akg:judgedFailureMode fm:bearing-damage ;
           akg:judgedSensor ?s ; akg:relevant false
           FILTER NOT EXISTS { ?k akg:judgedAsset cls:electric-motor ; akg:judgedFailureMode fm:bearing-damage ;
           akg:judgedSensor ?s ; akg:relevant true } }",
    );
    assert_eq!(motor_bearing.hard_negatives.len(), negatives);
    assert!(negatives > 0);
    assert!(motor_bearing
        .positives
        .iter()
        .any(|s| s.ends_with("/sensor/vibration")));
    let positives: BTreeSet<&String> = motor_bearing.positives.iter().collect();
    assert!(motor_bearing
        .hard_negatives
        .iter()
        .all(|n| !positives.contains(n)));
}

#[test]
fn every_item_is_in_the_one_corpus_with_its_kind_prefix() {
    let d = dataset();
    let positions = d.corpus_positions();
    for q in &d.queries {
        for item in q.positives.iter().chain(&q.hard_negatives) {
            assert!(
                positions.contains_key(item.as_str()),
                "{}: {item} not in the corpus",
                q.id
            );
        }
    }
    let text = |iri: &str| &d.corpus[positions[iri]].text;
    assert_eq!(
        text("https://w3id.org/assetkg/kb/sensor/vibration"),
        "Sensor: vibration"
    );
    assert_eq!(
        text("https://w3id.org/assetkg/kb/failure-mode-class/AIR"),
        "Failure class: abnormal instrument reading (AIR)"
    );
    assert!(d
        .corpus
        .iter()
        .any(|c| c.text.starts_with("Component group: ") && c.text.contains(", Component name: ")));
    let ids: BTreeSet<&str> = d.corpus.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), d.corpus.len(), "corpus ids are unique");
}

#[test]
fn asset_tasks_share_a_six_two_two_asset_split_and_the_others_split_sixty_twenty_twenty() {
    let d = dataset();
    let mut asset_split: BTreeMap<&str, Split> = BTreeMap::new();
    for task in [TaskCode::FM2S, TaskCode::S2FM, TaskCode::A2S] {
        for q in queries(task) {
            let previous = asset_split.insert(q.group.as_str(), q.split);
            assert!(
                previous.is_none() || previous == Some(q.split),
                "{} split differently in {task}",
                q.group
            );
        }
    }
    let per_split = |s: Split| asset_split.values().filter(|v| **v == s).count();
    assert_eq!(
        (
            per_split(Split::Train),
            per_split(Split::Validation),
            per_split(Split::Test)
        ),
        (6, 2, 2)
    );

    for task in [
        TaskCode::E2CLT,
        TaskCode::ES2U,
        TaskCode::FM2CLS,
        TaskCode::FM2CMP,
        TaskCode::C2FM,
    ] {
        let n = queries(task).len() as f64;
        let test = d.queries_of(task, Split::Test).count() as f64;
        let validation = d.queries_of(task, Split::Validation).count() as f64;
        assert!(
            (test - 0.2 * n).abs() <= 1.0,
            "{task}: {test} of {n} in test"
        );
        assert!(
            (validation - 0.2 * n).abs() <= 1.0,
            "{task}: {validation} of {n} in validation"
        );
    }
}

#[test]
fn building_is_deterministic_and_the_seed_changes_the_split() {
    let again = build(bundled(), DEFAULT_SEED).expect("build");
    assert_eq!(&again, dataset());
    let other = build(bundled(), DEFAULT_SEED + 1).expect("build");
    let splits = |d: &Dataset| d.queries.iter().map(|q| q.split).collect::<Vec<_>>();
    assert_ne!(splits(&other), splits(dataset()));
    assert!(check_leakage(&other).is_empty());
}

#[test]
fn the_real_splits_do_not_leak() {
    assert_eq!(check_leakage(dataset()), []);
}

#[test]
fn leaks_injected_on_purpose_are_caught() {
    // A held-out query copied into training.
    let mut d = dataset().clone();
    let test_query = d
        .queries
        .iter()
        .find(|q| q.task == TaskCode::C2FM && q.split == Split::Test)
        .expect("test")
        .clone();
    d.queries.push(assetkg::tasks::TaskQuery {
        split: Split::Train,
        ..test_query.clone()
    });
    let leaks = check_leakage(&d);
    assert!(
        leaks
            .iter()
            .any(|l| l.query == test_query.id && l.reason.contains("same query")),
        "{leaks:?}"
    );

    // A test asset's query moved into training of another asset-split task.
    let mut d = dataset().clone();
    let i = d
        .queries
        .iter()
        .position(|q| q.task == TaskCode::S2FM && q.split == Split::Test)
        .expect("test");
    d.queries[i].split = Split::Train;
    let asset = d.queries[i].group.clone();
    assert!(check_leakage(&d).iter().any(|l| l.reason.contains(&asset)));

    // A training query that can be written with the words of a test query (a shared synonym).
    let mut d = dataset().clone();
    let test = d
        .queries
        .iter()
        .find(|q| q.task == TaskCode::C2FM && q.split == Split::Test)
        .expect("test")
        .clone();
    let train = d
        .queries
        .iter_mut()
        .find(|q| q.task == TaskCode::C2FM && q.split == Split::Train)
        .expect("train");
    train.mentions[0]
        .synonyms
        .push(test.mentions[0].label.to_uppercase());
    let leaks = check_leakage(&d);
    assert!(
        leaks
            .iter()
            .any(|l| l.query == test.id && l.reason.contains("same words")),
        "{leaks:?}"
    );
}

#[test]
fn export_writes_every_task_and_split_the_manifest_and_beir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("tasks");
    let manifest =
        export(dataset(), &NoDescriptions, &ExportOptions::default(), &out).expect("export");
    assert_eq!(manifest.leaks, 0);
    assert_eq!(manifest.tasks.len(), 9);
    assert_eq!(manifest.corpus_size, dataset().corpus.len());
    let lines = |path: std::path::PathBuf| -> Vec<serde_json::Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    };
    for counts in &manifest.tasks {
        for split in Split::ALL {
            let records = lines(
                out.join(counts.task.as_str())
                    .join(format!("{split}.jsonl")),
            );
            assert_eq!(
                records.len(),
                counts.queries[&split],
                "{} {split}",
                counts.task
            );
            for r in &records {
                assert!(r["text"].as_str().expect("text").starts_with("Instruct: "));
                let variants = r
                    .get("variants")
                    .and_then(|v| v.as_array())
                    .map_or(0, Vec::len);
                assert_eq!(variants, if split == Split::Train { 8 } else { 0 });
            }
        }
    }
    assert_eq!(
        lines(out.join("corpus.jsonl")).len(),
        dataset().corpus.len()
    );
    assert_eq!(
        lines(out.join("beir/queries.jsonl")).len(),
        dataset().queries.len()
    );
    let qrels = std::fs::read_to_string(out.join("beir/qrels/test.tsv")).expect("qrels");
    let test_pairs: usize = dataset()
        .queries
        .iter()
        .filter(|q| q.split == Split::Test)
        .map(|q| q.positives.len())
        .sum();
    assert_eq!(qrels.lines().count(), 1 + test_pairs);
    let manifest_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest_json["seed"], DEFAULT_SEED);

    // A leaking dataset is refused and the previous export stays as it was.
    let mut leaking = dataset().clone();
    let test_query = leaking
        .queries
        .iter()
        .find(|q| q.split == Split::Test)
        .expect("test")
        .clone();
    leaking.queries.push(assetkg::tasks::TaskQuery {
        split: Split::Train,
        ..test_query
    });
    let before = std::fs::read(out.join("manifest.json")).expect("manifest");
    assert!(export(&leaking, &NoDescriptions, &ExportOptions::default(), &out).is_err());
    assert_eq!(
        std::fs::read(out.join("manifest.json")).expect("manifest"),
        before
    );
}
