//! Where the graph lives. [`GraphBackend`] is the little the knowledge base needs from a quad
//! store — match quads, list graphs, count, run a read-only query, apply one write — so that
//! every load, query and curation edit works the same on either backend:
//! - [`EmbeddedStore`]: an Oxigraph store in this process (RocksDB on disk, or in memory), the
//!   default; a write is one store transaction;
//! - [`RemoteSparql`]: any SPARQL 1.1 Protocol endpoint (Oxigraph server, Fuseki, GraphDB,
//!   QLever, Neptune…), read by queries and written by SPARQL updates, so that several API
//!   replicas share one graph.
//!
//! Writers are serialised by the knowledge base (its writer lock), which computes each write
//! from what the backend holds; the backend only has to apply it.

mod embedded;
mod remote;

pub use embedded::EmbeddedStore;
pub use remote::{RemoteSparql, RemoteSparqlConfig};

use super::error::{KbError, KbResult};
use super::query::{QueryLimits, QueryOutcome};
use oxigraph::model::{GraphNameRef, NamedNode, NamedNodeRef, NamedOrBlankNodeRef, Quad, TermRef};
use oxigraph::sparql::{QueryEvaluationError, QueryResults};

/// A quad store the knowledge base can live in.
pub trait GraphBackend: Send + Sync {
    /// The quads matching a pattern (`None` matches anything; a `None` graph matches the
    /// default graph and every named graph).
    fn quads(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<Vec<Quad>>;

    /// True when some quad matches the pattern (as [`Self::quads`], without reading them all).
    fn matches_any(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<bool>;

    /// The named graphs that hold quads.
    fn named_graphs(&self) -> KbResult<Vec<NamedNode>>;

    /// Number of quads, in every graph.
    fn quad_count(&self) -> KbResult<usize>;

    /// Runs a read-only SPARQL query with the project prefixes predeclared.
    fn query(&self, sparql: &str, limits: Option<&QueryLimits>) -> KbResult<QueryOutcome>;

    /// Applies `write`: removals, then dropped graphs, then insertions, in that order.
    fn write(&self, write: &GraphWrite) -> KbResult<()>;

    /// Where the graph is, for logs and errors.
    fn location(&self) -> String;
}

/// One write of the knowledge base, computed against what the backend holds.
#[derive(Debug, Default)]
pub struct GraphWrite {
    /// Quads to remove.
    pub remove: Vec<Quad>,
    /// Named graphs to drop with all their quads.
    pub drop_graphs: Vec<NamedNode>,
    /// Quads to insert, in order (a backend that cannot write everything at once writes the
    /// last ones last: the version record goes at the end).
    pub insert: Vec<Quad>,
}

impl GraphWrite {
    /// True when the write changes nothing.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.drop_graphs.is_empty() && self.insert.is_empty()
    }
}

/// Collects query results into a [`QueryOutcome`], refusing more than `max` rows or triples.
fn collect_results(
    results: QueryResults<'_>,
    max: usize,
    eval: impl Fn(QueryEvaluationError) -> KbError,
) -> KbResult<QueryOutcome> {
    let too_many = || KbError::TooManyResults { limit: max };
    Ok(match results {
        QueryResults::Boolean(b) => QueryOutcome::Boolean(b),
        QueryResults::Solutions(solutions) => {
            let variables = solutions.variables().to_vec();
            let mut rows = Vec::new();
            for solution in solutions {
                if rows.len() == max {
                    return Err(too_many());
                }
                let solution = solution.map_err(&eval)?;
                rows.push(variables.iter().map(|v| solution.get(v).cloned()).collect());
            }
            QueryOutcome::Solutions { variables, rows }
        }
        QueryResults::Graph(triples) => {
            let mut out = Vec::new();
            for triple in triples {
                if out.len() == max {
                    return Err(too_many());
                }
                out.push(triple.map_err(&eval)?);
            }
            QueryOutcome::Graph(out)
        }
    })
}
