//! Curation with provenance and versions, on a real in-memory store holding the bundled KB: the
//! default graph is the RDF merge of the fact graphs; every edit kind commits one validated
//! change set into a curation graph with its provenance; invalid edits change nothing; every
//! commit is a version, and versions diff into composed change sets and RDF Patch.

use crate::common::{bundled, config, fixture, snapshot};
use assetkg::kb::backend::GraphWrite;
use assetkg::kb::{Edit, EditOutcome, EditRequest, KbError, KnowledgeBase, QueryOutcome};
use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::{GraphNameRef, Term};
use std::collections::BTreeSet;

/// A fresh in-memory KB holding the bundled ontology and KB (one per test: tests edit it).
fn fresh() -> KnowledgeBase {
    let config = config();
    let kb = KnowledgeBase::in_memory(&config.shapes_file()).expect("shapes compile");
    kb.load_files(&config.bundled_files().expect("kb dir"))
        .expect("bundled KB loads");
    kb
}

fn rows(kb: &KnowledgeBase, query: &str) -> Vec<Vec<String>> {
    match kb.query(query).unwrap_or_else(|e| panic!("{query}: {e}")) {
        QueryOutcome::Solutions { rows, .. } => rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|t| match t {
                        Some(Term::NamedNode(n)) => n.into_string(),
                        Some(Term::Literal(l)) => l.value().to_owned(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    })
                    .collect()
            })
            .collect(),
        other => panic!("not a SELECT result: {other:?}"),
    }
}

fn count(kb: &KnowledgeBase, query: &str) -> u64 {
    rows(kb, query)[0][0].parse().expect("a number")
}

fn ask(kb: &KnowledgeBase, query: &str) -> bool {
    match kb.query(query).expect("query runs") {
        QueryOutcome::Boolean(b) => b,
        other => panic!("not an ASK result: {other:?}"),
    }
}

fn request(edit: Edit, agent: &str, reason: &str) -> EditRequest {
    EditRequest {
        edit,
        agent: agent.to_owned(),
        reason: reason.to_owned(),
    }
}

fn propose(s: &str, p: &str, o: &str) -> Edit {
    Edit::ProposeRelation {
        subject: s.to_owned(),
        predicate: p.to_owned(),
        object: o.to_owned(),
    }
}

fn assert_relation(s: &str, p: &str, o: &str) -> Edit {
    Edit::AssertRelation {
        subject: s.to_owned(),
        predicate: p.to_owned(),
        object: o.to_owned(),
    }
}

fn vet(s: &str, p: &str, o: &str) -> Edit {
    Edit::Vet {
        subject: s.to_owned(),
        predicate: p.to_owned(),
        object: o.to_owned(),
    }
}

fn reject(s: &str, p: &str, o: &str) -> Edit {
    Edit::Reject {
        subject: s.to_owned(),
        predicate: p.to_owned(),
        object: o.to_owned(),
    }
}

fn retract(s: &str, p: &str, o: &str) -> Edit {
    Edit::RetractRelation {
        subject: s.to_owned(),
        predicate: p.to_owned(),
        object: o.to_owned(),
    }
}

/// The fact graphs holding a triple, with their status, source label and reason.
fn provenance(kb: &KnowledgeBase, triple: &str) -> Vec<Vec<String>> {
    rows(
        kb,
        &format!(
            "SELECT ?g ?status ?label ?time ?reason WHERE {{
               GRAPH ?g {{ {triple} }}
               GRAPH ?g {{ ?g akg:vettingStatus ?status ; prov:wasAttributedTo ?src .
                          ?src skos:prefLabel ?label
                          OPTIONAL {{ ?g prov:generatedAtTime ?time }}
                          OPTIONAL {{ ?g rdfs:comment ?reason }} }}
             }} ORDER BY ?g"
        ),
    )
}

/// The asserted quads (every fact graph but the inferred one), as N-Quads terms.
fn asserted(kb: &KnowledgeBase) -> BTreeSet<String> {
    let mut out = Vec::new();
    kb.export(assetkg::kb::ExportFormat::Nquads, false, &mut out)
        .expect("export");
    RdfParser::from_format(RdfFormat::NQuads)
        .for_slice(&out)
        .map(|q| q.expect("n-quads").to_string())
        .collect()
}

const AKG: &str = "https://w3id.org/assetkg/ontology#";
const PROPOSED: &str = "https://w3id.org/assetkg/ontology#proposed";
const VETTED: &str = "https://w3id.org/assetkg/ontology#vetted";
const CURATION: &str = "https://w3id.org/assetkg/graph/curation/";

#[test]
fn the_default_graph_is_the_merge_of_the_fact_graphs() {
    let kb = bundled();
    let distinct = count(
        kb,
        "SELECT (COUNT(DISTINCT ?s) AS ?n) { GRAPH ?g { ?s a akg:Sensor } }",
    );
    assert_eq!(distinct, 54, "the bundled KB has 54 sensors");
    assert_eq!(
        count(kb, "SELECT (COUNT(*) AS ?n) { ?s a akg:Sensor }"),
        distinct,
        "a count over the default graph is a set count"
    );
    // The same triple is still stated by both files, each with its provenance.
    let graphs: Vec<String> = rows(
        kb,
        "SELECT ?g { GRAPH ?g { sensor:vibration a akg:Sensor } } ORDER BY ?g",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert_eq!(
        graphs,
        [
            "https://w3id.org/assetkg/graph/failuresensoriq",
            "https://w3id.org/assetkg/graph/sensors"
        ]
    );
    // Entailments are in the default graph too; the version log is not.
    assert!(ask(kb, "ASK { cls:pump a sosa:FeatureOfInterest }"));
    assert!(!ask(kb, "ASK { ?v a akg:KbVersion }"));
    assert!(ask(
        kb,
        "ASK { GRAPH graph:history { ?v a akg:KbVersion } }"
    ));
    // Every triple of the default graph is in a fact graph, and the other way round.
    assert!(!ask(
        kb,
        "ASK { ?s ?p ?o FILTER NOT EXISTS { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:history) } }"
    ));
    assert!(!ask(
        kb,
        "ASK { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:history) FILTER NOT EXISTS { ?s ?p ?o } }"
    ));
    // The default-graph copy and the log change neither the asserted facts nor the version.
    assert_eq!(
        kb.kb_version().expect("version"),
        kb.current_version().expect("current")
    );
}

#[test]
fn an_old_store_gets_its_default_graph_rebuilt_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config();
    let expected = {
        let kb = KnowledgeBase::open(dir.path(), &config.shapes_file()).expect("open");
        kb.load_files(&[config.ontology_file(), fixture("mini.ttl")])
            .expect("load");
        let expected = snapshot(&kb);
        // What a store written before the merge looks like: an empty default graph.
        let default_graph = kb
            .backend()
            .quads(None, None, None, Some(GraphNameRef::DefaultGraph))
            .expect("quads");
        kb.backend()
            .write(&GraphWrite {
                remove: default_graph,
                ..GraphWrite::default()
            })
            .expect("clear");
        assert!(!ask(&kb, "ASK { ?s ?p ?o }"));
        expected
    };
    let kb = KnowledgeBase::open(dir.path(), &config.shapes_file()).expect("reopen");
    assert_eq!(snapshot(&kb), expected, "the merge is rebuilt");
    assert!(ask(
        &kb,
        "ASK { cls:test-pump akg:inCategory cat:test-rotating }"
    ));
}

#[test]
fn propose_then_vet_moves_the_fact_into_a_vetted_graph() {
    let kb = fresh();
    let fact = "fm:bearing-wear akg:detectableBy sensor:ultrasound";
    assert!(!ask(&kb, &format!("ASK {{ {fact} }}")));
    let before = kb.versions().expect("versions");

    let proposed = kb
        .apply_edit(&request(
            propose("fm:bearing-wear", "akg:detectableBy", "sensor:ultrasound"),
            "Alice Expert",
            "ultrasound hears early bearing wear",
        ))
        .expect("propose");
    let graph = proposed.graph.clone().expect("a curation graph");
    assert!(graph.starts_with(CURATION), "{graph}");
    assert_eq!(proposed.version.seq, before.len() as u64 + 1);
    assert_eq!(proposed.version.action, "propose");
    assert_eq!(proposed.previous_version, before[before.len() - 1].id);
    assert_ne!(proposed.version.id, proposed.previous_version);
    assert_eq!(proposed.version.id, kb.kb_version().expect("version"));
    assert_eq!(proposed.version.graph.as_deref(), Some(graph.as_str()));
    assert_eq!(
        proposed.affected,
        BTreeSet::from([
            "https://w3id.org/assetkg/kb/failure-mode/bearing-wear".to_owned(),
            "https://w3id.org/assetkg/kb/sensor/ultrasound".to_owned(),
        ])
    );
    assert!(ask(&kb, &format!("ASK {{ {fact} }}")));
    let prov = provenance(&kb, fact);
    assert_eq!(prov.len(), 1, "{prov:?}");
    assert_eq!(prov[0][0], graph);
    assert_eq!(prov[0][1], PROPOSED);
    assert_eq!(prov[0][2], "Alice Expert");
    assert!(prov[0][3].starts_with("20"), "a time: {prov:?}");
    assert_eq!(prov[0][4], "ultrasound hears early bearing wear");
    assert!(ask(
        &kb,
        &format!(
            "ASK {{ GRAPH <{graph}> {{ <{graph}> prov:wasAttributedTo <https://w3id.org/assetkg/source/user/alice-expert> ;
                                              prov:wasGeneratedBy <{}> ; dct:title ?t }} }}",
            proposed.version.iri
        )
    ));

    let vetted = kb
        .apply_edit(&request(
            vet("fm:bearing-wear", "akg:detectableBy", "sensor:ultrasound"),
            "bob",
            "confirmed on the test bench",
        ))
        .expect("vet");
    assert_eq!(vetted.version.action, "vet");
    assert_eq!(vetted.version.seq, proposed.version.seq + 1);
    let vetted_graph = vetted.graph.clone().expect("a vetted graph");
    let prov = provenance(&kb, fact);
    assert_eq!(prov.len(), 1, "moved, not copied: {prov:?}");
    assert_eq!(prov[0][0], vetted_graph);
    assert_eq!(prov[0][1], VETTED);
    assert_eq!(prov[0][2], "bob");
    assert!(ask(
        &kb,
        &format!(
            "ASK {{ GRAPH <{vetted_graph}> {{ <{vetted_graph}> prov:wasDerivedFrom <{graph}> }} }}"
        )
    ));
    // The proposed graph held nothing else: its header went with its fact.
    assert!(!ask(
        &kb,
        &format!("ASK {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    ));
    assert!(!ask(&kb, &format!("ASK {{ <{graph}> ?p ?o }}")));
    assert!(kb.validate_store().expect("validate").is_empty());
    assert_eq!(vetted.version.id, kb.kb_version().expect("version"));
    assert_eq!(kb.current_version().expect("current"), vetted.version.id);

    // A fact of a proposed source file moves out of it the same way.
    let from_file = kb
        .apply_edit(&request(
            vet("fm:bearing-wear", "akg:inFailureModeClass", "fmc:VIB"),
            "bob",
            "ISO 14224 records it under VIB",
        ))
        .expect("vet a file's fact");
    let prov = provenance(&kb, "fm:bearing-wear akg:inFailureModeClass fmc:VIB");
    assert_eq!(prov.len(), 1, "{prov:?}");
    assert_eq!(Some(&prov[0][0]), from_file.graph.as_ref());
    assert_eq!(prov[0][1], VETTED);
    assert!(ask(
        &kb,
        "ASK { GRAPH graph:failure-modes { fm:bearing-wear akg:inFailureModeClass fmc:NOI ; a akg:FailureMode } }"
    ));
}

#[test]
fn assert_retract_reject_and_add_entity() {
    let kb = fresh();
    let asserted_edit = kb
        .apply_edit(&request(
            assert_relation("fm:bearing-wear", "akg:detectableBy", "sensor:noise"),
            "carol",
            "bearing noise is audible",
        ))
        .expect("assert");
    let prov = provenance(&kb, "fm:bearing-wear akg:detectableBy sensor:noise");
    assert_eq!(prov.len(), 1);
    assert_eq!(prov[0][1], VETTED);
    assert_eq!(Some(&prov[0][0]), asserted_edit.graph.as_ref());

    // Retracting removes the fact from every graph holding it; its curation graph goes too.
    let retracted = kb
        .apply_edit(&request(
            retract("fm:bearing-wear", "akg:detectableBy", "sensor:noise"),
            "carol",
            "asserted by mistake",
        ))
        .expect("retract");
    assert_eq!(retracted.graph, None);
    assert!(!ask(
        &kb,
        "ASK { fm:bearing-wear akg:detectableBy sensor:noise }"
    ));
    assert!(!ask(
        &kb,
        "ASK { GRAPH ?g { fm:bearing-wear akg:detectableBy sensor:noise } }"
    ));
    // The state is the one before the assertion again: same id, found as the latest record.
    assert_eq!(retracted.version.id, asserted_edit.previous_version);

    // A vetted fact of a source file is retracted from it.
    let retracted = kb
        .apply_edit(&request(
            retract(
                "fm:bearing-wear",
                "akg:detectableBy",
                "sensor:steam-leakage",
            ),
            "carol",
            "steam leakage does not reveal bearing wear",
        ))
        .expect("retract a file's fact");
    assert_eq!(retracted.removed, 1);
    assert!(!ask(
        &kb,
        "ASK { fm:bearing-wear akg:detectableBy sensor:steam-leakage }"
    ));

    // Rejecting removes a proposed fact and records the rejection in the log.
    kb.apply_edit(&request(
        propose("fm:bearing-wear", "akg:detectableBy", "sensor:voltage"),
        "dave",
        "maybe",
    ))
    .expect("propose");
    let rejected = kb
        .apply_edit(&request(
            reject("fm:bearing-wear", "akg:detectableBy", "sensor:voltage"),
            "erin",
            "supply voltage says nothing about bearings",
        ))
        .expect("reject");
    assert!(!ask(
        &kb,
        "ASK { fm:bearing-wear akg:detectableBy sensor:voltage }"
    ));
    let log = kb.versions().expect("versions");
    let last = log.last().expect("a record");
    assert_eq!(last, &rejected.version);
    assert_eq!(last.action, "reject");
    assert_eq!(last.agent_label, "erin");
    assert_eq!(last.agent, "https://w3id.org/assetkg/source/user/erin");
    assert_eq!(last.reason, "supply voltage says nothing about bearings");
    assert!(last.removed >= 1);
    let patch = kb
        .diff(&(last.seq - 1).to_string(), &last.seq.to_string())
        .expect("diff")
        .to_rdf_patch();
    assert!(
        patch.contains("D <https://w3id.org/assetkg/kb/failure-mode/bearing-wear> <https://w3id.org/assetkg/ontology#detectableBy> <https://w3id.org/assetkg/kb/sensor/voltage>"),
        "{patch}"
    );

    // A new entity with everything its shapes ask for, in one edit.
    let added = kb
        .apply_edit(&request(
            Edit::AddEntity {
                iri: "fm:test-bearing-spalling".to_owned(),
                class: "failure mode".to_owned(),
                label: "bearing spalling".to_owned(),
                definition: "Flakes of metal breaking out of a rolling bearing's raceway by surface fatigue.".to_owned(),
                alt_labels: vec!["raceway spalling".to_owned()],
                relations: vec![
                    ("akg:inFailureModeClass".to_owned(), "fmc:VIB".to_owned()),
                    ("akg:detectableBy".to_owned(), "sensor:vibration".to_owned()),
                ],
            },
            "frank",
            "missing from ISO 14224 lists",
        ))
        .expect("add entity");
    assert_eq!(added.version.action, "add-entity");
    assert!(added
        .affected
        .contains("https://w3id.org/assetkg/kb/failure-mode/test-bearing-spalling"));
    assert!(added
        .affected
        .contains("https://w3id.org/assetkg/kb/failure-mode-class/VIB"));
    let prov = provenance(
        &kb,
        "fm:test-bearing-spalling skos:prefLabel \"bearing spalling\"@en",
    );
    assert_eq!(prov.len(), 1);
    assert_eq!(prov[0][1], VETTED);
    assert_eq!(prov[0][2], "frank");
    assert!(ask(
        &kb,
        "ASK { fm:test-bearing-spalling a akg:FailureMode ; skos:altLabel \"raceway spalling\"@en ;
                 akg:detectableBy sensor:vibration }"
    ));
    // Its entailments were recomputed with it.
    assert!(ask(
        &kb,
        "ASK { GRAPH graph:inferred { fm:test-bearing-spalling a akg:Entity , skos:Concept } }"
    ));
    assert!(kb.validate_store().expect("validate").is_empty());
}

#[test]
fn invalid_edits_are_refused_by_name_and_change_nothing() {
    let kb = fresh();
    let before = snapshot(&kb);
    let versions = kb.versions().expect("versions").len();
    let refuse = |edit: Edit| -> KbError {
        kb.apply_edit(&request(edit, "mallory", "testing"))
            .map(|o: EditOutcome| panic!("accepted: {o:?}"))
            .unwrap_err()
    };

    // An entity without definition breaks the entity shape.
    let err = refuse(Edit::AddEntity {
        iri: "sensor:test-no-definition".to_owned(),
        class: "akg:Sensor".to_owned(),
        label: "no definition".to_owned(),
        definition: String::new(),
        alt_labels: Vec::new(),
        relations: Vec::new(),
    });
    let KbError::Invalid(violations) = &err else {
        panic!("expected violations, got {err}")
    };
    assert!(
        violations
            .iter()
            .any(|v| v.focus == "sensor:test-no-definition"
                && v.path.as_deref() == Some("skos:definition")),
        "{err}"
    );

    let err = refuse(propose(
        "fm:bearing-wear",
        "akg:nonsense",
        "sensor:vibration",
    ));
    assert!(matches!(err, KbError::UnknownPredicate { .. }), "{err}");
    assert!(err.to_string().contains("akg:nonsense"), "{err}");

    let err = refuse(propose(
        "fm:bearing-wear",
        "akg:detectableBy",
        "sensor:nope",
    ));
    assert!(matches!(err, KbError::UnknownEntity { .. }), "{err}");
    assert!(err.to_string().contains("sensor:nope"), "{err}");

    // A relation whose object breaks sh:class: a failure mode must be a failure mode.
    let err = refuse(assert_relation(
        "cls:pump",
        "akg:hasFailureMode",
        "sensor:vibration",
    ));
    let KbError::Invalid(violations) = &err else {
        panic!("expected violations, got {err}")
    };
    assert!(
        violations.iter().any(|v| v.focus == "cls:pump"
            && v.path.as_deref() == Some("akg:hasFailureMode")
            && v.component == "sh:ClassConstraintComponent"),
        "{err}"
    );

    // Vetting a fact that is vetted already (the relevance matrix is expert-curated).
    let err = refuse(vet(
        "fm:bearing-wear",
        "akg:detectableBy",
        "sensor:vibration",
    ));
    assert!(matches!(err, KbError::NotProposed { .. }), "{err}");
    assert!(
        err.to_string().contains("graph:failuresensoriq (vetted)"),
        "{err}"
    );
    let err = refuse(reject(
        "fm:bearing-wear",
        "akg:detectableBy",
        "sensor:noise",
    ));
    assert!(matches!(err, KbError::NoSuchFact { .. }), "{err}");

    let err = refuse(propose(
        "fm:bearing-wear",
        "akg:detectableBy",
        "sensor:vibration",
    ));
    assert!(matches!(err, KbError::FactExists { .. }), "{err}");
    let err = refuse(retract(
        "akg:inCategory",
        "rdfs:subPropertyOf",
        "skos:broader",
    ));
    assert!(matches!(err, KbError::OntologyAxiom { .. }), "{err}");
    let err = refuse(Edit::AddEntity {
        iri: "sensor:vibration".to_owned(),
        class: "sensor".to_owned(),
        label: "vibration".to_owned(),
        definition: "Already there, so refused.".to_owned(),
        alt_labels: Vec::new(),
        relations: Vec::new(),
    });
    assert!(matches!(err, KbError::EntityExists { .. }), "{err}");
    let err = refuse(Edit::AddEntity {
        iri: "sensor:test-x".to_owned(),
        class: "gizmo".to_owned(),
        label: "x".to_owned(),
        definition: "Of no class the ontology knows.".to_owned(),
        alt_labels: Vec::new(),
        relations: Vec::new(),
    });
    assert!(matches!(err, KbError::UnknownClass { .. }), "{err}");
    let err = kb
        .apply_edit(&request(
            propose("fm:bearing-wear", "akg:detectableBy", "sensor:noise"),
            "  ",
            "no agent",
        ))
        .expect_err("an agent is required");
    assert!(err.to_string().contains("agent"), "{err}");

    assert_eq!(snapshot(&kb), before, "refused edits change nothing");
    assert_eq!(kb.versions().expect("versions").len(), versions);
}

#[test]
fn every_commit_is_a_version_and_diffs_compose() {
    let kb = fresh();
    let log = kb.versions().expect("versions");
    assert_eq!(log.len(), 1, "the load is the first version");
    assert_eq!(log[0].action, "load");
    assert_eq!(log[0].seq, 1);
    assert_eq!(log[0].id, kb.kb_version().expect("version"));
    let mut states = vec![asserted(&kb)];

    let edits = [
        propose("fm:bearing-wear", "akg:detectableBy", "sensor:ultrasound"),
        assert_relation("fm:bearing-wear", "akg:detectableBy", "sensor:noise"),
        vet("fm:bearing-wear", "akg:detectableBy", "sensor:ultrasound"),
    ];
    for edit in edits {
        kb.apply_edit(&request(edit, "alice", "diff test"))
            .expect("edit");
        states.push(asserted(&kb));
    }
    let log = kb.versions().expect("versions");
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let ids: BTreeSet<&String> = log.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), 4, "every commit has a new id");
    for pair in log.windows(2) {
        assert_eq!(pair[1].previous.as_ref(), Some(&pair[0].id));
    }
    assert!(ask(
        &kb,
        &format!(
            "ASK {{ GRAPH graph:history {{ <{}> akg:previousVersion <{}> ; akg:versionId \"{}\" ;
                     akg:action \"vet\" ; prov:wasAssociatedWith ?a . ?a skos:prefLabel \"alice\"@en }} }}",
            log[3].iri, log[2].iri, log[3].id
        )
    ));

    // v2 → v4, by sequence number and by id, is the composed change.
    let expected_added: Vec<String> = states[3].difference(&states[1]).cloned().collect();
    let expected_removed: Vec<String> = states[1].difference(&states[3]).cloned().collect();
    let diff = kb.diff("2", "4").expect("diff");
    assert_eq!(diff.from, log[1].id);
    assert_eq!(diff.to, log[3].id);
    assert_eq!(diff.added, expected_added);
    assert_eq!(diff.removed, expected_removed);
    assert_eq!(kb.diff(&log[1].id, &log[3].id).expect("diff by id"), diff);
    let back = kb.diff("4", "2").expect("reverse diff");
    assert_eq!(back.added, diff.removed);
    assert_eq!(back.removed, diff.added);
    // The proposed fact moved: its proposed quad was added by v2 and is not in the diff from v2.
    assert!(diff
        .removed
        .iter()
        .any(|q| q.contains("sensor/ultrasound") && q.contains(CURATION)));

    let patch = diff.to_rdf_patch();
    assert!(
        patch.starts_with(&format!(
            "H id \"{}\" .\nH prev \"{}\" .\nTX .\n",
            log[3].id, log[1].id
        )),
        "{patch}"
    );
    assert!(patch.ends_with("TC .\n"));
    assert_eq!(
        patch.lines().filter(|l| l.starts_with("A ")).count(),
        diff.added.len()
    );
    assert_eq!(
        patch.lines().filter(|l| l.starts_with("D ")).count(),
        diff.removed.len()
    );
    for line in patch
        .lines()
        .filter(|l| l.starts_with("A ") || l.starts_with("D "))
    {
        RdfParser::from_format(RdfFormat::NQuads)
            .for_slice(&line.as_bytes()[2..])
            .for_each(|q| {
                q.unwrap_or_else(|e| panic!("{line}: {e}"));
            });
    }
    let json = serde_json::to_value(&diff).expect("json");
    assert_eq!(json["from_seq"], 2);
    assert_eq!(
        json["added"].as_array().map(Vec::len),
        Some(diff.added.len())
    );

    // Everything since the load, against the load itself.
    let all = kb.diff("1", &log[3].id).expect("diff");
    assert_eq!(
        all.added,
        states[3]
            .difference(&states[0])
            .cloned()
            .collect::<Vec<_>>()
    );
    assert!(matches!(
        kb.diff("sha256:0000", "1"),
        Err(KbError::UnknownVersion(_))
    ));
    assert!(matches!(kb.diff("9", "1"), Err(KbError::UnknownVersion(_))));
}

#[test]
fn sparql_updates_commit_through_the_same_path() {
    let kb = fresh();
    let inserted = kb
        .apply_update(
            "INSERT DATA { fm:bearing-wear akg:detectableBy sensor:ultrasound }",
            "grace",
            "curator update",
        )
        .expect("insert data");
    assert_eq!(inserted.version.action, "update");
    let graph = inserted.graph.clone().expect("a curation graph");
    let prov = provenance(&kb, "fm:bearing-wear akg:detectableBy sensor:ultrasound");
    assert_eq!(prov.len(), 1);
    assert_eq!(prov[0][0], graph);
    assert_eq!(prov[0][1], VETTED, "a curator's insert is vetted");
    assert_eq!(prov[0][2], "grace");
    assert_eq!(prov[0][4], "curator update");

    // Deleting from the default graph retracts from every fact graph holding the triple.
    let deleted = kb
        .apply_update(
            "DELETE DATA { fm:bearing-wear akg:detectableBy sensor:ultrasound , sensor:vibration }",
            "grace",
            "curator delete",
        )
        .expect("delete data");
    assert_eq!(deleted.graph, None);
    assert!(!ask(
        &kb,
        "ASK { GRAPH ?g { fm:bearing-wear akg:detectableBy ?s FILTER(?s IN (sensor:ultrasound, sensor:vibration)) } }"
    ));
    assert!(!ask(
        &kb,
        &format!("ASK {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    ));
    assert!(kb.validate_store().expect("validate").is_empty());

    // A pattern update: relabel one synonym.
    kb.apply_update(
        "DELETE { ?s skos:altLabel \"MAF\"@en } INSERT { ?s skos:altLabel \"mass air flow\"@en }
         WHERE { ?s skos:altLabel \"MAF\"@en }",
        "grace",
        "spell the synonym out",
    )
    .expect("delete/insert where");
    assert!(ask(
        &kb,
        "ASK { sensor:air-flow skos:altLabel \"mass air flow\"@en }"
    ));
    assert!(!ask(
        &kb,
        "ASK { GRAPH ?g { ?s skos:altLabel \"MAF\"@en } }"
    ));

    let before = snapshot(&kb);
    for (update, what) in [
        (
            "INSERT DATA { GRAPH graph:inferred { fm:bearing-wear akg:detectableBy sensor:noise } }",
            "graph:inferred",
        ),
        (
            "DELETE WHERE { GRAPH graph:inferred { cls:pump a sosa:FeatureOfInterest } }",
            "graph:inferred",
        ),
        (
            "INSERT DATA { GRAPH graph:history { <urn:x> <urn:y> <urn:z> } }",
            "graph:history",
        ),
        (
            "DELETE DATA { akg:inCategory rdfs:subPropertyOf skos:broader }",
            "ontology",
        ),
        (
            "INSERT DATA { GRAPH <https://w3id.org/assetkg/graph/nowhere> { fm:bearing-wear akg:detectableBy sensor:noise } }",
            "graph:nowhere",
        ),
        ("INSERT DATA { fm:bearing-wear akg:detectableBy }", "syntax"),
        ("DELETE DATA { fm:bearing-wear akg:detectableBy sensor:noise }", "nothing to commit"),
        (
            "INSERT DATA { cls:pump akg:hasFailureMode sensor:vibration }",
            "akg:hasFailureMode",
        ),
    ] {
        let err = kb
            .apply_update(update, "grace", "refused")
            .expect_err(update);
        assert!(err.to_string().contains(what), "{update}: {err}");
    }
    assert_eq!(snapshot(&kb), before, "refused updates change nothing");
}

#[test]
fn concurrent_edits_are_serialised() {
    let kb = fresh();
    let outcomes: Vec<EditOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["sensor:ultrasound", "sensor:noise"]
            .into_iter()
            .map(|sensor| {
                let kb = &kb;
                scope.spawn(move || {
                    kb.apply_edit(&request(
                        propose("fm:bearing-wear", "akg:detectableBy", sensor),
                        "alice",
                        "concurrent",
                    ))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("edit"))
            .collect()
    });
    let mut seqs: Vec<u64> = outcomes.iter().map(|o| o.version.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [2, 3]);
    let (first, second) = if outcomes[0].version.seq == 2 {
        (&outcomes[0], &outcomes[1])
    } else {
        (&outcomes[1], &outcomes[0])
    };
    assert_eq!(
        second.previous_version, first.version.id,
        "validated on top of the other"
    );
    assert_ne!(first.graph, second.graph);
    assert!(ask(
        &kb,
        "ASK { fm:bearing-wear akg:detectableBy sensor:ultrasound , sensor:noise }"
    ));
    assert_eq!(
        kb.current_version().expect("current"),
        kb.kb_version().expect("version")
    );
    assert!(kb.validate_store().expect("validate").is_empty());
    let _ = AKG;
}

/// Costs on the bundled KB, for the documentation (run with `--ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn curation_costs() {
    use std::time::Instant;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("assetkg::kb=debug")
        .with_test_writer()
        .try_init();
    let t = Instant::now();
    let kb = fresh();
    eprintln!("load of the bundled KB: {:?}", t.elapsed());
    let quads = {
        let mut out = Vec::new();
        kb.export(assetkg::kb::ExportFormat::Nquads, false, &mut out)
            .expect("export");
        RdfParser::from_format(RdfFormat::NQuads)
            .for_slice(&out)
            .collect::<Result<Vec<_>, _>>()
            .expect("parse")
    };
    let t = Instant::now();
    let id = assetkg::kb::version_of(&quads).expect("hash");
    eprintln!(
        "version id of {} asserted quads: {:?}",
        quads.len(),
        t.elapsed()
    );
    assert_eq!(id, kb.current_version().expect("current"));
    let t = Instant::now();
    let violations = kb.validate_store().expect("validate");
    eprintln!("shacl validation: {:?}", t.elapsed());
    assert!(violations.is_empty());
    let t = Instant::now();
    let merged: std::collections::HashSet<oxigraph::model::Triple> = kb
        .backend()
        .quads(None, None, None, None)
        .expect("quads")
        .into_iter()
        .filter(|q| !q.graph_name.to_string().contains("graph/history"))
        .map(Into::into)
        .collect();
    eprintln!(
        "default graph recompute ({} triples): {:?}",
        merged.len(),
        t.elapsed()
    );
    let t = Instant::now();
    kb.apply_edit(&request(
        propose("fm:bearing-wear", "akg:detectableBy", "sensor:ultrasound"),
        "alice",
        "timing",
    ))
    .expect("edit");
    eprintln!("one edit end to end: {:?}", t.elapsed());
    let t = Instant::now();
    kb.apply_update(
        "INSERT DATA { fm:bearing-wear akg:detectableBy sensor:noise }",
        "alice",
        "timing",
    )
    .expect("update");
    eprintln!("one SPARQL update end to end: {:?}", t.elapsed());
}
