//! The FailureSensorIQ import: the committed file is exactly what the importer writes, and the
//! store reproduces every judged cell of the source CSV with one SPARQL query.

use crate::common::{bundled, root, write};
use assetkg::kb::matrix::{import, ImportReport};
use assetkg::kb::{KbError, QueryOutcome};
use oxigraph::model::Term;
use std::collections::BTreeSet;

fn matrix_csv() -> std::path::PathBuf {
    root().join("kb/sources/failuresensoriq/fm_sensor_relevance.csv")
}

fn names_csv() -> std::path::PathBuf {
    root().join("kb/mappings/failuresensoriq-names.csv")
}

#[test]
fn the_committed_import_is_what_the_importer_writes() {
    let (turtle, report) = import(&matrix_csv(), &names_csv()).expect("import");
    let committed =
        std::fs::read_to_string(root().join("kb/failuresensoriq.ttl")).expect("committed file");
    assert!(
        turtle == committed,
        "kb/failuresensoriq.ttl is stale: run `assetkg import-matrix`"
    );
    assert_eq!(
        report,
        ImportReport {
            cells: 1342,
            relevant: 470,
            not_relevant: 872,
            assets: 10,
            failure_modes: report.failure_modes,
            sensors: report.sensors,
            triples: report.triples,
        }
    );
    // Splitting and merging raw names leaves fewer canonical names than raw ones (59 and 55).
    assert!(
        report.failure_modes < 59 && report.failure_modes > 40,
        "{report:?}"
    );
    assert!(report.sensors < 60 && report.sensors > 45, "{report:?}");
}

/// One SPARQL query over the store gives back the source CSV: the asset's label, the raw names
/// (which must also be labels of the linked failure mode and sensor entities) and the judgment.
#[test]
fn every_row_of_the_matrix_is_reproduced_from_the_store() {
    let query = r#"
        SELECT ?asset ?fm ?sensor ?relevant WHERE {
          ?j a akg:SensorRelevanceJudgment ;
             akg:judgedAsset/skos:prefLabel ?assetLabel ;
             akg:sourceFailureModeName ?fm ;
             akg:sourceSensorName ?sensor ;
             akg:relevant ?r .
          BIND(STR(?assetLabel) AS ?asset)
          BIND(IF(?r, "1", "0") AS ?relevant)
          FILTER NOT EXISTS { ?j akg:judgedFailureMode ?f .
                              FILTER NOT EXISTS { ?f skos:prefLabel|skos:altLabel ?l . FILTER(STR(?l) = ?fm) } }
          FILTER NOT EXISTS { ?j akg:judgedSensor ?s .
                              FILTER NOT EXISTS { ?s skos:prefLabel|skos:altLabel ?l . FILTER(STR(?l) = ?sensor) } }
        }"#;
    let QueryOutcome::Solutions { rows, .. } = bundled().query(query).expect("query") else {
        panic!("select")
    };
    let text = |t: &Option<Term>| match t {
        Some(Term::Literal(l)) => l.value().to_owned(),
        other => panic!("expected a literal, got {other:?}"),
    };
    let from_store: BTreeSet<[String; 4]> = rows
        .iter()
        .map(|r| [text(&r[0]), text(&r[1]), text(&r[2]), text(&r[3])])
        .collect();

    let mut reader = csv::Reader::from_path(matrix_csv()).expect("csv");
    let from_csv: BTreeSet<[String; 4]> = reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            [
                r[0].to_owned(),
                r[1].to_owned(),
                r[2].to_owned(),
                r[3].to_owned(),
            ]
        })
        .collect();
    assert_eq!(from_csv.len(), 1342);
    assert_eq!(rows.len(), 1342, "one solution per judgment");
    let missing: Vec<_> = from_csv.difference(&from_store).take(5).collect();
    let extra: Vec<_> = from_store.difference(&from_csv).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn raw_names_still_resolve_to_entities() {
    let query = "SELECT ?s WHERE { ?s skos:altLabel \"compresor pressure/ pressure ratio\"@en } ORDER BY ?s";
    let QueryOutcome::Solutions { rows, .. } = bundled().query(query).expect("query") else {
        panic!("select")
    };
    let found: Vec<String> = rows
        .iter()
        .map(|r| r[0].as_ref().expect("bound").to_string())
        .collect();
    assert_eq!(
        found,
        [
            "<https://w3id.org/assetkg/kb/sensor/compressor-pressure>",
            "<https://w3id.org/assetkg/kb/sensor/pressure-ratio>"
        ]
    );
}

#[test]
fn a_bad_relevance_value_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = write(dir.path(), "m.csv", "asset,failure_mode,sensor,relevant\npump,unbalance,vibration,1\npump,unbalance,power,yes\n");
    match import(&csv, &names_csv()) {
        Err(KbError::Matrix {
            path,
            line,
            message,
        }) => {
            assert_eq!(path, csv);
            assert_eq!(line, 3);
            assert!(message.contains("\"yes\""), "{message}");
        }
        other => panic!("expected a matrix error, got {other:?}"),
    }
}

#[test]
fn a_name_missing_from_the_table_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = write(
        dir.path(),
        "m.csv",
        "asset,failure_mode,sensor,relevant\npump,unbalance,gravitational waves,1\n",
    );
    let err = import(&csv, &names_csv())
        .expect_err("must fail")
        .to_string();
    assert!(
        err.contains("gravitational waves") && err.contains("name table"),
        "{err}"
    );
}
