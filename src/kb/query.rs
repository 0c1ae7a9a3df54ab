//! Read-only SPARQL over the knowledge base and the writing of results as a table, SPARQL
//! JSON/XML/CSV/TSV, or Turtle/N-Triples for graph results. The default graph of every query is
//! the store's default graph, which every commit keeps equal to the RDF merge (set union) of the
//! fact graphs and the inferred graph, so a fact stated by two sources counts once; `GRAPH ?g`
//! reaches each fact graph with its provenance (and `graph:history`, the version log). The
//! project prefixes are predeclared.

use super::error::{KbError, KbResult};
use super::KnowledgeBase;
use crate::vocab::{compact, PREFIXES};
use oxigraph::io::{RdfFormat, RdfSerializer};
use oxigraph::model::{Term, Triple};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsSerializer};
use oxigraph::sparql::{QuerySolution, Variable};
use std::io::Write;
use std::sync::Arc;

/// How to write query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A text table with compacted IRIs (for people).
    Table,
    /// SPARQL 1.1 Query Results JSON.
    Json,
    /// SPARQL 1.1 Query Results XML.
    Xml,
    /// SPARQL 1.1 Query Results CSV.
    Csv,
    /// SPARQL 1.1 Query Results TSV.
    Tsv,
    /// Turtle (CONSTRUCT and DESCRIBE only).
    Turtle,
    /// N-Triples (CONSTRUCT and DESCRIBE only).
    Ntriples,
}

/// The collected result of a query.
#[derive(Debug, Clone)]
pub enum QueryOutcome {
    /// SELECT: variables and one row of optional values per solution.
    Solutions {
        variables: Vec<Variable>,
        rows: Vec<Vec<Option<Term>>>,
    },
    /// ASK.
    Boolean(bool),
    /// CONSTRUCT or DESCRIBE.
    Graph(Vec<Triple>),
}

impl KnowledgeBase {
    /// Runs a read-only SPARQL query (updates do not parse here).
    pub fn query(&self, sparql: &str) -> KbResult<QueryOutcome> {
        self.run_query(sparql, None)
    }

    /// Like [`Self::query`], stopping when `limits.cancel` is cancelled or the results pass
    /// `limits.max_results`.
    pub fn query_limited(&self, sparql: &str, limits: &QueryLimits) -> KbResult<QueryOutcome> {
        self.run_query(sparql, Some(limits))
    }

    fn run_query(&self, sparql: &str, limits: Option<&QueryLimits>) -> KbResult<QueryOutcome> {
        self.store.query(sparql, limits)
    }
}

/// Limits of a query run for a client.
#[derive(Clone)]
pub struct QueryLimits {
    /// Cancelling this token stops the evaluation (the caller's timer does it).
    pub cancel: oxigraph::sparql::CancellationToken,
    /// The time limit the caller enforces, for the error message.
    pub timeout: std::time::Duration,
    /// Most rows (SELECT) or triples (CONSTRUCT, DESCRIBE) returned.
    pub max_results: usize,
}

impl QueryOutcome {
    /// Number of rows (SELECT), triples (CONSTRUCT) or 1 (ASK).
    pub fn len(&self) -> usize {
        match self {
            Self::Solutions { rows, .. } => rows.len(),
            Self::Boolean(_) => 1,
            Self::Graph(triples) => triples.len(),
        }
    }

    /// True when a SELECT or CONSTRUCT returned nothing.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Solutions { rows, .. } if rows.is_empty())
            || matches!(self, Self::Graph(t) if t.is_empty())
    }

    /// Writes the results in `format`.
    pub fn write(&self, format: OutputFormat, out: &mut impl Write) -> KbResult<()> {
        let ser = |e: std::io::Error| KbError::Serialize(e.to_string());
        match (self, format) {
            (Self::Graph(triples), OutputFormat::Turtle | OutputFormat::Ntriples | OutputFormat::Table) => {
                let rdf_format = if format == OutputFormat::Ntriples { RdfFormat::NTriples } else { RdfFormat::Turtle };
                let mut serializer = RdfSerializer::from_format(rdf_format);
                for (prefix, iri) in PREFIXES {
                    serializer = serializer.with_prefix(*prefix, *iri).map_err(|e| KbError::Serialize(e.to_string()))?;
                }
                let mut writer = serializer.for_writer(out);
                for t in triples {
                    writer.serialize_triple(t).map_err(ser)?;
                }
                writer.finish().map_err(ser)?;
            }
            (Self::Graph(_), _) => {
                return Err(KbError::Serialize(format!(
                    "a CONSTRUCT or DESCRIBE result is a graph: use --format turtle or ntriples, not {format:?}"
                )))
            }
            (_, OutputFormat::Turtle | OutputFormat::Ntriples) => {
                return Err(KbError::Serialize(format!(
                    "{format:?} is for CONSTRUCT and DESCRIBE results; use table, json, xml, csv or tsv"
                )))
            }
            (Self::Boolean(b), OutputFormat::Table) => writeln!(out, "{b}").map_err(ser)?,
            (Self::Solutions { variables, rows }, OutputFormat::Table) => {
                let mut table = comfy_table::Table::new();
                table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
                table.set_header(variables.iter().map(|v| v.as_str().to_owned()));
                for row in rows {
                    table.add_row(row.iter().map(|t| t.as_ref().map(show_term).unwrap_or_default()));
                }
                writeln!(out, "{table}\n{} row(s)", rows.len()).map_err(ser)?;
            }
            (Self::Boolean(b), _) => {
                let serializer = QueryResultsSerializer::from_format(results_format(format));
                serializer.serialize_boolean_to_writer(out, *b).map_err(ser)?;
            }
            (Self::Solutions { variables, rows }, _) => {
                let serializer = QueryResultsSerializer::from_format(results_format(format));
                let mut writer = serializer
                    .serialize_solutions_to_writer(out, variables.clone())
                    .map_err(ser)?;
                let shared: Arc<[Variable]> = variables.clone().into();
                for row in rows {
                    let solution = QuerySolution::from((shared.clone(), row.clone()));
                    writer.serialize(&solution).map_err(ser)?;
                }
                writer.finish().map_err(ser)?;
            }
        }
        Ok(())
    }
}

fn results_format(format: OutputFormat) -> QueryResultsFormat {
    match format {
        OutputFormat::Xml => QueryResultsFormat::Xml,
        OutputFormat::Csv => QueryResultsFormat::Csv,
        OutputFormat::Tsv => QueryResultsFormat::Tsv,
        _ => QueryResultsFormat::Json,
    }
}

/// A term as people read it: compacted IRI, or the literal's text.
pub fn show_term(term: &Term) -> String {
    match term {
        Term::NamedNode(n) => compact(n.as_str()),
        Term::Literal(l) => l.value().to_owned(),
        other => other.to_string(),
    }
}
