//! SPARQL results in every output format, and export formats that read back.

use crate::common::{bundled, ontology_only};
use assetkg::kb::{ExportFormat, KnowledgeBase, OutputFormat, QueryOutcome};
use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::sparql::results::{
    QueryResultsFormat, QueryResultsParser, SliceQueryResultsParserOutput,
};

const SELECT: &str =
    "SELECT ?sensor ?label WHERE { cls:electric-motor akg:hasMonitoredProperty ?sensor .
                      ?sensor skos:prefLabel ?label } ORDER BY ?sensor";

fn render(kb: &KnowledgeBase, query: &str, format: OutputFormat) -> String {
    let mut out = Vec::new();
    kb.query(query)
        .expect("query")
        .write(format, &mut out)
        .expect("write");
    String::from_utf8(out).expect("utf-8")
}

fn solution_count(text: &str, format: QueryResultsFormat) -> usize {
    match QueryResultsParser::from_format(format)
        .for_slice(text.as_bytes())
        .expect("parses")
    {
        SliceQueryResultsParserOutput::Solutions(s) => {
            s.collect::<Result<Vec<_>, _>>().expect("solutions").len()
        }
        SliceQueryResultsParserOutput::Boolean(_) => panic!("not solutions"),
    }
}

#[test]
fn select_results_in_every_format() {
    let kb = bundled();
    let QueryOutcome::Solutions { rows, .. } = kb.query(SELECT).expect("query") else {
        panic!()
    };
    assert!(
        rows.len() >= 10,
        "the electric motor has its matrix sensors"
    );
    for (format, results) in [
        (OutputFormat::Json, QueryResultsFormat::Json),
        (OutputFormat::Xml, QueryResultsFormat::Xml),
        (OutputFormat::Tsv, QueryResultsFormat::Tsv),
    ] {
        let text = render(kb, SELECT, format);
        assert_eq!(solution_count(&text, results), rows.len(), "{format:?}");
    }
    // CSV is lossy (no term types), so no parser reads it back: check its shape instead.
    let csv = render(kb, SELECT, OutputFormat::Csv);
    assert!(csv.starts_with("sensor,label\r\n"), "{csv}");
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let table = render(kb, SELECT, OutputFormat::Table);
    assert!(
        table.contains("sensor:vibration") && table.contains(&format!("{} row(s)", rows.len())),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(kb, SELECT, OutputFormat::Json)).expect("json");
    assert_eq!(json["head"]["vars"], serde_json::json!(["sensor", "label"]));
}

#[test]
fn ask_and_construct_results() {
    let kb = bundled();
    assert_eq!(
        render(
            kb,
            "ASK { sensor:vibration a akg:Sensor }",
            OutputFormat::Table
        )
        .trim(),
        "true"
    );
    let json = render(
        kb,
        "ASK { sensor:vibration a akg:Sensor }",
        OutputFormat::Json,
    );
    assert!(json.contains("\"boolean\":true"), "{json}");
    let construct =
        "CONSTRUCT { ?s skos:prefLabel ?l } WHERE { ?s a akg:Sensor ; skos:prefLabel ?l }";
    let turtle = render(kb, construct, OutputFormat::Turtle);
    let parsed = RdfParser::from_format(RdfFormat::Turtle)
        .for_slice(turtle.as_bytes())
        .count();
    assert_eq!(parsed, kb.query(construct).expect("query").len());
    assert!(kb
        .query(construct)
        .expect("query")
        .write(OutputFormat::Csv, &mut Vec::new())
        .is_err());
    assert!(kb
        .query(SELECT)
        .expect("query")
        .write(OutputFormat::Turtle, &mut Vec::new())
        .is_err());
}

#[test]
fn updates_are_not_queries() {
    let err = bundled()
        .query("DELETE WHERE { ?s ?p ?o }")
        .expect_err("updates do not parse as queries");
    assert!(err.to_string().contains("sparql syntax error"), "{err}");
}

#[test]
fn exports_read_back() {
    let kb = ontology_only();
    kb.load_files(&[crate::common::fixture("mini.ttl")])
        .expect("mini");
    // Asserted quads: neither the default graph (the merge), nor the inferred graph, nor the log.
    let asserted = kb
        .backend()
        .quads(None, None, None, None)
        .expect("quads")
        .into_iter()
        .filter(|q| {
            let g = q.graph_name.to_string();
            !q.graph_name.is_default_graph()
                && !g.contains("graph/inferred")
                && !g.contains("graph/history")
        })
        .count();
    for (format, rdf) in [
        (ExportFormat::Turtle, RdfFormat::Turtle),
        (
            ExportFormat::Jsonld,
            RdfFormat::JsonLd {
                profile: oxigraph::io::JsonLdProfileSet::empty(),
            },
        ),
        (ExportFormat::Trig, RdfFormat::TriG),
    ] {
        let mut out = Vec::new();
        kb.export(format, false, &mut out).expect("export");
        let quads: Vec<_> = RdfParser::from_format(rdf)
            .for_slice(&out)
            .collect::<Result<_, _>>()
            .expect("parses");
        if format == ExportFormat::Turtle {
            let distinct: std::collections::BTreeSet<_> =
                quads.iter().map(|q| q.to_string()).collect();
            assert!(
                distinct.len() <= asserted && !distinct.is_empty(),
                "{format:?}"
            );
        } else {
            assert_eq!(
                quads.len(),
                asserted,
                "{format:?} keeps every asserted quad"
            );
        }
    }
}
