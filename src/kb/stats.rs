//! Counts that tell a knowledge engineer what the KB holds: entities per class, relations,
//! provenance and vetting coverage of asserted facts, and the fact graphs themselves.

use super::error::KbResult;
use super::query::{show_term, QueryOutcome};
use super::KnowledgeBase;
use oxigraph::model::Term;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A count of facts or judgments with one vetting status.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusCount {
    /// `proposed`, `vetted`, `rejected`, or `none` when a graph has no status.
    pub status: String,
    /// How many.
    pub count: u64,
}

/// One fact graph and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct GraphStats {
    /// The graph IRI (compacted).
    pub graph: String,
    /// Its title.
    pub title: String,
    /// Who its facts are attributed to.
    pub source: String,
    /// Its vetting status.
    pub status: String,
    /// Number of triples.
    pub triples: u64,
}

/// Everything `assetkg stats` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The KB version id (RDFC-1.0 canonical hash of the asserted facts), from the version log.
    pub kb_version: String,
    /// Entities per ontology class (asserted types only), keyed by the class's compact IRI.
    pub entities: BTreeMap<String, u64>,
    /// Equipment classes with at least one subunit that has maintainable items.
    pub decomposed_classes: u64,
    /// Equipment classes with at least one equipment type.
    pub classes_with_types: u64,
    /// Asserted triples (all fact graphs but the inferred one; the version log is not a fact
    /// graph).
    pub asserted_triples: u64,
    /// Asserted triples whose object is a resource, other than `rdf:type`: the relations.
    pub relations: u64,
    /// Asserted triples in a fact graph attributed to a source.
    pub with_provenance: u64,
    /// Asserted triples in a fact graph with a vetting status.
    pub with_vetting_status: u64,
    /// Percentage of asserted triples with both provenance and vetting status.
    pub provenance_coverage_percent: f64,
    /// Asserted triples per vetting status of their graph.
    pub triples_by_status: Vec<StatusCount>,
    /// Relevance judgments per vetting status.
    pub judgments_by_status: Vec<StatusCount>,
    /// Relevance judgments that say relevant / not relevant.
    pub judgments_relevant: u64,
    /// See [`Stats::judgments_relevant`].
    pub judgments_not_relevant: u64,
    /// RDFS entailments materialised at load time.
    pub inferred_triples: u64,
    /// The fact graphs.
    pub graphs: Vec<GraphStats>,
}

impl KnowledgeBase {
    /// Computes [`Stats`] with a handful of SPARQL queries.
    pub fn stats(&self) -> KbResult<Stats> {
        let entities = self
            .rows(
                "SELECT ?class (COUNT(DISTINCT ?s) AS ?n) WHERE {
                   GRAPH ?g { ?s a ?class } FILTER(?g != graph:inferred && ?g != graph:history)
                   FILTER(STRSTARTS(STR(?class), STR(akg:)))
                 } GROUP BY ?class",
            )?
            .into_iter()
            .map(|r| (text(&r[0]), number(&r[1])))
            .collect();
        let one = |q: &str| -> KbResult<u64> {
            Ok(self.rows(q)?.first().map(|r| number(&r[0])).unwrap_or(0))
        };
        let decomposed_classes = one(
            "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?i akg:partOf ?s . ?s akg:subunitOf ?c }",
        )?;
        let classes_with_types =
            one("SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?t akg:typeOf ?c }")?;
        let asserted_triples = one(
            "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:inferred && ?g != graph:history) }",
        )?;
        let relations = one("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o }
               FILTER(?g != graph:inferred && ?g != graph:history && ?p != rdf:type && !isLiteral(?o)) }")?;
        let with_provenance = one(
            "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:inferred && ?g != graph:history)
               FILTER EXISTS { ?g a akg:FactGraph ; prov:wasAttributedTo ?src } }",
        )?;
        let with_vetting_status = one(
            "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:inferred && ?g != graph:history)
               FILTER EXISTS { ?g a akg:FactGraph ; akg:vettingStatus ?st } }",
        )?;
        let both = one(
            "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:inferred && ?g != graph:history)
               FILTER EXISTS { ?g a akg:FactGraph ; prov:wasAttributedTo ?src ; akg:vettingStatus ?st } }",
        )?;
        let triples_by_status = self.status_counts(
            "SELECT ?status (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:inferred && ?g != graph:history)
               OPTIONAL { ?g akg:vettingStatus ?st } BIND(COALESCE(?st, \"none\") AS ?status)
             } GROUP BY ?status",
        )?;
        let judgments_by_status = self.status_counts(
            "SELECT ?status (COUNT(DISTINCT ?j) AS ?n) WHERE { ?j a akg:SensorRelevanceJudgment
               OPTIONAL { ?j akg:vettingStatus ?st } BIND(COALESCE(?st, \"none\") AS ?status)
             } GROUP BY ?status",
        )?;
        let judgments_relevant =
            one("SELECT (COUNT(DISTINCT ?j) AS ?n) WHERE { ?j a akg:SensorRelevanceJudgment ; akg:relevant true }")?;
        let judgments_not_relevant =
            one("SELECT (COUNT(DISTINCT ?j) AS ?n) WHERE { ?j a akg:SensorRelevanceJudgment ; akg:relevant false }")?;
        let inferred_triples =
            one("SELECT (COUNT(*) AS ?n) WHERE { GRAPH graph:inferred { ?s ?p ?o } }")?;
        let graphs = self
            .rows(
                "SELECT ?g (SAMPLE(?t) AS ?title) (SAMPLE(?src) AS ?source) (SAMPLE(?st) AS ?status)
                        (COUNT(?s) AS ?n) WHERE {
                   GRAPH ?g { ?s ?p ?o } FILTER(?g != graph:history)
                   OPTIONAL { ?g dct:title ?t } OPTIONAL { ?g prov:wasAttributedTo ?src }
                   OPTIONAL { ?g akg:vettingStatus ?st }
                 } GROUP BY ?g ORDER BY ?g",
            )?
            .into_iter()
            .map(|r| GraphStats {
                graph: text(&r[0]),
                title: text(&r[1]),
                source: text(&r[2]),
                status: text(&r[3]).trim_start_matches("akg:").to_owned(),
                triples: number(&r[4]),
            })
            .collect();
        let provenance_coverage_percent = if asserted_triples == 0 {
            0.0
        } else {
            100.0 * both as f64 / asserted_triples as f64
        };
        Ok(Stats {
            kb_version: self.current_version()?,
            entities,
            decomposed_classes,
            classes_with_types,
            asserted_triples,
            relations,
            with_provenance,
            with_vetting_status,
            provenance_coverage_percent,
            triples_by_status,
            judgments_by_status,
            judgments_relevant,
            judgments_not_relevant,
            inferred_triples,
            graphs,
        })
    }

    fn rows(&self, query: &str) -> KbResult<Vec<Vec<Option<Term>>>> {
        match self.query(query)? {
            QueryOutcome::Solutions { rows, .. } => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    fn status_counts(&self, query: &str) -> KbResult<Vec<StatusCount>> {
        Ok(self
            .rows(query)?
            .into_iter()
            .map(|r| StatusCount {
                status: text(&r[0]).trim_start_matches("akg:").to_owned(),
                count: number(&r[1]),
            })
            .collect())
    }
}

impl Stats {
    /// Entities of one ontology class, by local name (`"Sensor"`).
    pub fn count(&self, class: &str) -> u64 {
        self.entities
            .get(&format!("akg:{class}"))
            .copied()
            .unwrap_or(0)
    }
}

fn text(term: &Option<Term>) -> String {
    term.as_ref().map(show_term).unwrap_or_default()
}

fn number(term: &Option<Term>) -> u64 {
    match term {
        Some(Term::Literal(l)) => l.value().parse().unwrap_or(0),
        _ => 0,
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kb version: {}", self.kb_version)?;
        writeln!(f, "entities per class:")?;
        for (class, n) in &self.entities {
            writeln!(f, "  {class:<32} {n:>7}")?;
        }
        writeln!(
            f,
            "equipment classes with a decomposition: {}",
            self.decomposed_classes
        )?;
        writeln!(
            f,
            "equipment classes with types:          {}",
            self.classes_with_types
        )?;
        writeln!(
            f,
            "asserted triples: {}  (relations: {})",
            self.asserted_triples, self.relations
        )?;
        writeln!(
            f,
            "with provenance: {}  with vetting status: {}  coverage: {:.1} %",
            self.with_provenance, self.with_vetting_status, self.provenance_coverage_percent
        )?;
        let statuses = |v: &[StatusCount]| {
            v.iter()
                .map(|s| format!("{} {}", s.status, s.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "triples by vetting status: {}",
            statuses(&self.triples_by_status)
        )?;
        writeln!(
            f,
            "judgments by vetting status: {}",
            statuses(&self.judgments_by_status)
        )?;
        writeln!(
            f,
            "judgments: {} relevant, {} not relevant",
            self.judgments_relevant, self.judgments_not_relevant
        )?;
        writeln!(f, "inferred triples (RDFS): {}", self.inferred_triples)?;
        writeln!(f, "fact graphs:")?;
        for g in &self.graphs {
            writeln!(
                f,
                "  {:<36} {:>7} triples  {:<9} {}  — {}",
                g.graph, g.triples, g.status, g.source, g.title
            )?;
        }
        Ok(())
    }
}
