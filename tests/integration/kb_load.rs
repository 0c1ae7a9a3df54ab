//! Loading: the bundled KB validates and meets the minimum counts; bad input is refused
//! with a precise error and leaves the store unchanged; every RDF format loads; RocksDB persists.

use crate::common::{bundled, config, fixture, ontology_only, snapshot, write};
use assetkg::kb::{KbError, KnowledgeBase, QueryOutcome};
use oxigraph::io::{JsonLdProfileSet, RdfFormat, RdfParser, RdfSerializer};

/// Quads of the fact graphs and the inferred graph: the store without its default graph (a
/// merge of them) and without the version log (which differs with the number of loads).
fn fact_and_inferred_quads(kb: &KnowledgeBase) -> usize {
    kb.backend()
        .quads(None, None, None, None)
        .expect("quads")
        .into_iter()
        .filter(|q| {
            !q.graph_name.is_default_graph()
                && q.graph_name.to_string() != "<https://w3id.org/assetkg/graph/history>"
        })
        .count()
}

fn ask(kb: &KnowledgeBase, query: &str) -> bool {
    match kb.query(query).expect("query runs") {
        QueryOutcome::Boolean(b) => b,
        other => panic!("not an ASK result: {other:?}"),
    }
}

#[test]
fn bundled_kb_has_no_violations() {
    let violations = bundled().validate_store().expect("validation runs");
    assert!(
        violations.is_empty(),
        "violations:\n{}",
        assetkg::kb::Violation::summary(&violations, 30)
    );
}

#[test]
fn bundled_kb_meets_the_minimum_counts() {
    let stats = bundled().stats().expect("stats");
    let at_least = |class: &str, min: u64| {
        let n = stats.count(class);
        assert!(n >= min, "{class}: {n} < {min}");
    };
    at_least("EquipmentCategory", 8);
    at_least("EquipmentClass", 60);
    at_least("EquipmentType", 120);
    at_least("MaintainableItem", 500);
    at_least("FailureModeClass", 40);
    at_least("FailureDescription", 140);
    assert!(
        stats.decomposed_classes >= 25,
        "decomposed classes: {}",
        stats.decomposed_classes
    );
    assert_eq!(stats.count("SensorRelevanceJudgment"), 1342);
    assert_eq!(stats.judgments_relevant, 470);
    assert_eq!(stats.judgments_not_relevant, 872);
    assert_eq!(
        stats.with_provenance, stats.asserted_triples,
        "every asserted triple has a source"
    );
    assert_eq!(
        stats.with_vetting_status, stats.asserted_triples,
        "every asserted triple has a status"
    );
    assert!((stats.provenance_coverage_percent - 100.0).abs() < 1e-9);
    assert!(
        stats.inferred_triples > 0,
        "RDFS entailments were materialised"
    );
}

#[test]
fn the_ten_assets_are_decomposed() {
    let kb = bundled();
    for asset in [
        "aero-gas-turbine",
        "compressor",
        "electric-generator",
        "electric-motor",
        "fan",
        "industrial-gas-turbine",
        "power-transformer",
        "pump",
        "reciprocating-internal-combustion-engine",
        "steam-turbine",
    ] {
        let q = format!("ASK {{ ?item akg:partOf ?s . ?s akg:subunitOf cls:{asset} }}");
        assert!(ask(kb, &q), "{asset} has no maintainable items");
    }
}

#[test]
fn rdfs_entailments_are_materialised_in_their_own_graph() {
    let kb = bundled();
    assert!(ask(
        kb,
        "ASK { GRAPH graph:inferred { cls:pump a sosa:FeatureOfInterest , skos:Concept } }"
    ));
    assert!(ask(
        kb,
        "ASK { GRAPH graph:inferred { cls:pump skos:broader cat:rotating-equipment } }"
    ));
    assert!(ask(
        kb,
        "ASK { GRAPH graph:inferred { cls:pump ssn:hasProperty sensor:vibration } }"
    ));
    // Asserted facts are not repeated in the inferred graph.
    assert!(!ask(
        kb,
        "ASK { GRAPH graph:inferred { cls:pump a akg:EquipmentClass } }"
    ));
}

#[test]
fn a_syntax_error_names_file_line_and_column_and_writes_nothing() {
    let kb = ontology_only();
    let before = snapshot(&kb);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(fixture("mini.ttl")).expect("fixture");
    let broken = format!(
        "{good}\ncls:broken a akg:EquipmentClass ;\n    skos:prefLabel \"unterminated@en .\n"
    );
    let path = write(dir.path(), "broken.ttl", &broken);
    let line = broken.lines().count() as u64;
    match kb.load_files(std::slice::from_ref(&path)) {
        Err(KbError::Syntax {
            path: p,
            line: l,
            column,
            ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(l, line, "the error points at the unterminated string");
            assert!(column > 1);
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert_eq!(snapshot(&kb), before);
}

#[test]
fn an_unknown_prefix_is_a_syntax_error_naming_the_prefix() {
    let kb = ontology_only();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(fixture("mini.ttl")).expect("fixture");
    let path = write(
        dir.path(),
        "prefix.ttl",
        &format!("{good}\nnope:thing a akg:Sensor .\n"),
    );
    let err = kb.load_files(&[path]).expect_err("must fail");
    let message = err.to_string();
    assert!(matches!(err, KbError::Syntax { .. }), "{message}");
    assert!(
        message.contains("nope"),
        "message names the prefix: {message}"
    );
    assert!(
        message.contains("prefix.ttl:"),
        "message names the file: {message}"
    );
}

#[test]
fn a_shape_violation_names_focus_path_and_shape_and_writes_nothing() {
    let kb = ontology_only();
    kb.load_files(&[fixture("mini.ttl")]).expect("mini loads");
    let before = snapshot(&kb);
    let err = kb
        .load_files(&[fixture("bad-shape.ttl")])
        .expect_err("must fail");
    let KbError::Invalid(violations) = &err else {
        panic!("expected violations, got {err:?}")
    };
    let orphan = violations
        .iter()
        .find(|v| v.focus == "item:orphan")
        .unwrap_or_else(|| panic!("no violation for item:orphan in {violations:?}"));
    assert_eq!(orphan.path.as_deref(), Some("akg:partOf"));
    assert_eq!(orphan.component, "sh:MinCountConstraintComponent");
    assert_eq!(orphan.shape.as_deref(), Some("shp:MaintainableItem-partOf"));
    assert!(orphan.message.contains("part of exactly one"), "{orphan:?}");
    assert!(
        orphan.files.iter().any(|f| f.ends_with("bad-shape.ttl")),
        "{orphan:?}"
    );
    assert!(violations
        .iter()
        .any(|v| v.focus == "fmc:BADCODE" && v.path.as_deref() == Some("akg:code")));
    assert_eq!(snapshot(&kb), before, "a refused load changes nothing");
}

#[test]
fn a_failing_file_rolls_back_the_whole_batch() {
    let kb = ontology_only();
    let before = snapshot(&kb);
    let err = kb
        .load_files(&[fixture("mini.ttl"), fixture("bad-shape.ttl")])
        .expect_err("must fail");
    assert!(matches!(err, KbError::Invalid(_)));
    assert_eq!(
        snapshot(&kb),
        before,
        "the valid file of the batch was not written either"
    );
}

#[test]
fn a_missing_file_is_named() {
    let kb = ontology_only();
    let missing = fixture("does-not-exist.ttl");
    match kb.load_files(std::slice::from_ref(&missing)) {
        Err(KbError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an io error, got {other:?}"),
    }
}

#[test]
fn a_file_without_a_fact_graph_is_refused() {
    let kb = ontology_only();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "anon.ttl",
        "<https://example.org/a> <https://example.org/b> \"c\" .\n",
    );
    assert!(matches!(
        kb.load_files(&[path]),
        Err(KbError::NoFactGraph { .. })
    ));
}

#[test]
fn reloading_a_file_replaces_its_graph() {
    let kb = ontology_only();
    kb.load_files(&[fixture("mini.ttl")]).expect("mini loads");
    let dir = tempfile::tempdir().expect("tempdir");
    let mini = std::fs::read_to_string(fixture("mini.ttl")).expect("fixture");
    let edited = mini.replace("\"coupling\"@en", "\"flexible coupling\"@en");
    let path = write(dir.path(), "mini-edited.ttl", &edited);
    kb.load_files(&[path]).expect("edited mini loads");
    assert!(ask(
        &kb,
        "ASK { item:test-pump--drive--coupling skos:prefLabel \"flexible coupling\"@en }"
    ));
    assert!(!ask(
        &kb,
        "ASK { item:test-pump--drive--coupling skos:prefLabel \"coupling\"@en }"
    ));
}

#[test]
fn every_rdf_format_loads_the_same_facts() {
    let reference = ontology_only();
    reference
        .load_files(&[fixture("mini.ttl")])
        .expect("mini loads");
    // The ontology's blank nodes get new labels on every parse: compare canonical versions.
    let expected = reference.kb_version().expect("version");
    let expected_len = fact_and_inferred_quads(&reference);

    let turtle = std::fs::read(fixture("mini.ttl")).expect("fixture");
    let triples: Vec<_> = RdfParser::from_format(RdfFormat::Turtle)
        .for_slice(&turtle)
        .collect::<Result<_, _>>()
        .expect("fixture parses");
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, format) in [
        ("mini.nt", RdfFormat::NTriples),
        ("mini.rdf", RdfFormat::RdfXml),
        (
            "mini.jsonld",
            RdfFormat::JsonLd {
                profile: JsonLdProfileSet::empty(),
            },
        ),
    ] {
        let mut writer = RdfSerializer::from_format(format).for_writer(Vec::new());
        for q in &triples {
            writer.serialize_quad(q).expect("serialise");
        }
        let path = dir.path().join(name);
        std::fs::write(&path, writer.finish().expect("finish")).expect("write");
        let kb = ontology_only();
        kb.load_files(&[path])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            kb.kb_version().expect("version"),
            expected,
            "{name} loads the same facts as Turtle"
        );
        assert_eq!(
            fact_and_inferred_quads(&kb),
            expected_len,
            "{name}: same asserted and inferred quads"
        );
    }
    // Dataset formats keep their named graphs: export TriG and N-Quads, load them back.
    for (name, export) in [
        ("mini.trig", assetkg::kb::ExportFormat::Trig),
        ("mini.nq", assetkg::kb::ExportFormat::Nquads),
    ] {
        let mut out = Vec::new();
        reference.export(export, false, &mut out).expect("export");
        let path = dir.path().join(name);
        std::fs::write(&path, out).expect("write");
        let kb = KnowledgeBase::in_memory(&config().shapes_file()).expect("kb");
        kb.load_files(&[path])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            kb.kb_version().expect("version"),
            expected,
            "{name} round-trips"
        );
        assert_eq!(
            fact_and_inferred_quads(&kb),
            expected_len,
            "{name}: same asserted and inferred quads"
        );
    }
}

#[test]
fn the_on_disk_store_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config();
    let before = {
        let kb = KnowledgeBase::open(dir.path(), &config.shapes_file()).expect("open");
        kb.load_files(&[config.ontology_file(), fixture("mini.ttl")])
            .expect("load");
        snapshot(&kb)
    };
    let kb = KnowledgeBase::open(dir.path(), &config.shapes_file()).expect("reopen");
    assert_eq!(snapshot(&kb), before);
    assert!(ask(
        &kb,
        "ASK { cls:test-pump akg:inCategory cat:test-rotating }"
    ));
}

#[test]
fn a_load_is_recorded_as_a_version() {
    let kb = ontology_only();
    let report = kb.load_files(&[fixture("mini.ttl")]).expect("mini loads");
    let log = kb.versions().expect("versions");
    assert_eq!(log.len(), 2, "the ontology load and this one");
    let last = &log[1];
    assert_eq!(last.action, "load");
    assert_eq!(last.seq, 2);
    assert_eq!(last.id, report.kb_version);
    assert_eq!(last.previous.as_ref(), Some(&log[0].id));
    assert!(last.reason.contains("mini.ttl"), "{last:?}");
    assert_eq!(report.kb_version, kb.kb_version().expect("version"));
    assert_eq!(kb.current_version().expect("current"), report.kb_version);
    let diff = kb.diff("1", "2").expect("diff");
    assert_eq!(diff.added.len(), last.added);
    assert!(diff.removed.is_empty());
    assert!(diff
        .added
        .iter()
        .all(|q| q.ends_with("<https://w3id.org/assetkg/graph/test-mini>")));
}

#[test]
fn files_cannot_write_the_inferred_graph_or_the_version_log() {
    let kb = ontology_only();
    let before = snapshot(&kb);
    let dir = tempfile::tempdir().expect("tempdir");
    for graph in ["inferred", "history"] {
        let path = write(
            dir.path(),
            &format!("{graph}.ttl"),
            &format!(
                "@prefix akg: <https://w3id.org/assetkg/ontology#> .\n\
                 <https://w3id.org/assetkg/graph/{graph}> a akg:FactGraph .\n"
            ),
        );
        let err = kb.load_files(&[path]).expect_err("refused");
        assert!(
            matches!(err, KbError::ReservedGraph { .. }) && err.to_string().contains(graph),
            "{err}"
        );
    }
    assert_eq!(snapshot(&kb), before);
}

#[test]
fn the_kb_version_depends_on_the_facts_only() {
    let config = config();
    let a = KnowledgeBase::in_memory(&config.shapes_file()).expect("kb");
    a.load_files(&[config.ontology_file(), fixture("mini.ttl")])
        .expect("load");
    let b = KnowledgeBase::in_memory(&config.shapes_file()).expect("kb");
    b.load_files(&[fixture("mini.ttl"), config.ontology_file()])
        .expect("load in another order");
    let version = a.kb_version().expect("version");
    assert!(
        version.starts_with("sha256:") && version.len() == 7 + 64,
        "{version}"
    );
    assert_eq!(version, b.kb_version().expect("version"));

    let dir = tempfile::tempdir().expect("tempdir");
    let mini = std::fs::read_to_string(fixture("mini.ttl")).expect("fixture");
    let edited = write(
        dir.path(),
        "mini.ttl",
        &mini.replace(
            "for tests.\"@en ;\n    akg:inCategory",
            "used in tests.\"@en ;\n    akg:inCategory",
        ),
    );
    b.load_files(&[edited]).expect("edited loads");
    assert_ne!(
        version,
        b.kb_version().expect("version"),
        "a changed definition changes the version"
    );
}
