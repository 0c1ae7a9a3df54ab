//! A graph in any SPARQL 1.1 store, reached over the SPARQL 1.1 Protocol: reads are SELECT
//! queries, writes are SPARQL updates (`DELETE DATA`, `DROP GRAPH`, `INSERT DATA`). Unlike the
//! rest of the crate this module speaks HTTP, as a client: the graph is somewhere else.
//!
//! A write goes as one update request when it fits the request size limit, which a SPARQL store
//! applies atomically; curation edits always fit. A larger write (a load of whole files into an
//! empty store) is sent as several requests in order, the version record last, so an
//! interrupted load leaves the version unchanged and running the load again completes it (a
//! load replaces its graphs). The default graph of the store must be its own graph, not the
//! union of the named graphs (the default of Oxigraph and Fuseki): the knowledge base keeps the
//! merge of the fact graphs there itself.
//!
//! Blank nodes (the ontology's RDF lists) are stored as skolem IRIs
//! (`https://w3id.org/assetkg/.well-known/genid/ID`, RDF 1.1 §3.5) and read back as the blank
//! nodes they were: `DELETE DATA` cannot name a blank node, and a blank node written in two
//! update requests would become two nodes.

use super::{collect_results, GraphBackend, GraphWrite};
use crate::kb::error::{KbError, KbResult};
use crate::kb::query::{QueryLimits, QueryOutcome};
use crate::vocab::PREFIXES;
use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::{
    BlankNode, GraphName, GraphNameRef, NamedNode, NamedNodeRef, NamedOrBlankNode,
    NamedOrBlankNodeRef, Quad, Term, TermRef, Triple,
};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsParser};
use oxigraph::sparql::{QueryEvaluationError, QueryResults};
use std::fmt::Write as _;
use std::time::Duration;

/// Where the store is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RemoteSparqlConfig {
    /// The SPARQL 1.1 query endpoint (e.g. `http://localhost:7878/query`).
    pub query_url: String,
    /// The SPARQL 1.1 update endpoint (e.g. `http://localhost:7878/update`).
    pub update_url: String,
    /// The `Authorization` header sent with every request (e.g. `Bearer …` or `Basic …`).
    pub authorization: Option<String>,
    /// Time limit of a request that has no limit of its own.
    pub timeout: Duration,
    /// Largest update request body; Oxigraph's server accepts 1 MiB.
    pub max_update_bytes: usize,
}

impl RemoteSparqlConfig {
    /// The endpoints, with the default timeout (60 s) and update size (512 KiB).
    pub fn new(query_url: impl Into<String>, update_url: impl Into<String>) -> Self {
        Self {
            query_url: query_url.into(),
            update_url: update_url.into(),
            authorization: None,
            timeout: Duration::from_secs(60),
            max_update_bytes: 512 * 1024,
        }
    }
}

/// A SPARQL 1.1 Protocol endpoint as the graph backend.
pub struct RemoteSparql {
    config: RemoteSparqlConfig,
    agent: ureq::Agent,
}

/// The prefix of the skolem IRIs that stand for blank nodes in the store.
const SKOLEM: &str = "https://w3id.org/assetkg/.well-known/genid/";

fn skolem_iri(node: &BlankNode) -> NamedNode {
    NamedNode::new_unchecked(format!("{SKOLEM}{}", node.as_str()))
}

/// The blank node a skolem IRI stands for.
fn blank_of(node: &NamedNode) -> Option<BlankNode> {
    node.as_str()
        .strip_prefix(SKOLEM)
        .and_then(|id| BlankNode::new(id).ok())
}

/// `quad` as the store holds it: blank nodes as skolem IRIs.
fn skolemize(quad: &Quad) -> Quad {
    let subject = match &quad.subject {
        NamedOrBlankNode::BlankNode(b) => NamedOrBlankNode::from(skolem_iri(b)),
        other => other.clone(),
    };
    let object = match &quad.object {
        Term::BlankNode(b) => Term::from(skolem_iri(b)),
        other => other.clone(),
    };
    let graph_name = match &quad.graph_name {
        GraphName::BlankNode(b) => GraphName::from(skolem_iri(b)),
        other => other.clone(),
    };
    Quad::new(subject, quad.predicate.clone(), object, graph_name)
}

/// A term read from the store: skolem IRIs back to blank nodes.
fn unskolemize(term: Term) -> Term {
    match term {
        Term::NamedNode(n) => match blank_of(&n) {
            Some(b) => Term::BlankNode(b),
            None => Term::NamedNode(n),
        },
        other => other,
    }
}

fn unskolemize_subject(subject: NamedOrBlankNode) -> NamedOrBlankNode {
    match subject {
        NamedOrBlankNode::NamedNode(n) => match blank_of(&n) {
            Some(b) => NamedOrBlankNode::BlankNode(b),
            None => NamedOrBlankNode::NamedNode(n),
        },
        other => other,
    }
}

/// Query results with skolem IRIs back to blank nodes.
fn unskolemize_outcome(outcome: QueryOutcome) -> QueryOutcome {
    match outcome {
        QueryOutcome::Solutions { variables, rows } => QueryOutcome::Solutions {
            variables,
            rows: rows
                .into_iter()
                .map(|row| row.into_iter().map(|t| t.map(unskolemize)).collect())
                .collect(),
        },
        QueryOutcome::Graph(triples) => QueryOutcome::Graph(
            triples
                .into_iter()
                .map(|t| {
                    Triple::new(
                        unskolemize_subject(t.subject),
                        t.predicate,
                        unskolemize(t.object),
                    )
                })
                .collect(),
        ),
        other => other,
    }
}

/// Solutions of a SELECT query: one optional term per variable.
type Rows = Vec<Vec<Option<Term>>>;

/// Results and RDF bodies may be large (a whole-store read for a curation edit).
const MAX_RESPONSE_BYTES: u64 = 1 << 31;

impl RemoteSparql {
    /// A client of the endpoints in `config`; answers `ASK {}` first, so that a wrong URL or
    /// credential fails here rather than at the first request.
    pub fn connect(config: RemoteSparqlConfig) -> KbResult<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let remote = Self { config, agent };
        remote.select("ASK {}", None)?;
        Ok(remote)
    }

    /// Sends `body` to the query endpoint and returns the response body.
    fn post(
        &self,
        url: &str,
        content_type: &str,
        accept: &str,
        body: &str,
        timeout: Option<Duration>,
        action: &'static str,
    ) -> KbResult<Vec<u8>> {
        let error = |message: String| KbError::Remote {
            url: url.to_owned(),
            action,
            message,
        };
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", content_type)
            .header("Accept", accept);
        if let Some(auth) = &self.config.authorization {
            request = request.header("Authorization", auth);
        }
        if let Some(timeout) = timeout {
            request = request.config().timeout_global(Some(timeout)).build();
        }
        let mut response = request.send(body).map_err(|e| match (e, timeout) {
            (ureq::Error::Timeout(_), Some(limit)) => KbError::QueryTimeout {
                seconds: limit.as_secs_f64(),
            },
            (e, _) => error(e.to_string()),
        })?;
        let status = response.status();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| error(format!("reading the response: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let excerpt: String = text.chars().take(500).collect();
            return Err(error(format!("HTTP {status}: {}", excerpt.trim())));
        }
        Ok(bytes)
    }

    /// Runs a SELECT or ASK query given in full (no prefixes needed).
    fn select(&self, sparql: &str, limits: Option<&QueryLimits>) -> KbResult<QueryOutcome> {
        let body = self.post(
            &self.config.query_url,
            "application/sparql-query",
            "application/sparql-results+json",
            sparql,
            limits.map(|l| l.timeout),
            "query",
        )?;
        let eval =
            |e: QueryEvaluationError| self.query_error("reading query results", e.to_string());
        let parsed = QueryResultsParser::from_format(QueryResultsFormat::Json)
            .for_slice(&body)
            .map_err(|e| self.query_error("reading query results", e.to_string()))?;
        collect_results(
            QueryResults::from(parsed),
            limits.map_or(usize::MAX, |l| l.max_results),
            eval,
        )
    }

    /// Runs a CONSTRUCT or DESCRIBE query given in full.
    fn construct(&self, sparql: &str, limits: Option<&QueryLimits>) -> KbResult<QueryOutcome> {
        let body = self.post(
            &self.config.query_url,
            "application/sparql-query",
            "application/n-triples",
            sparql,
            limits.map(|l| l.timeout),
            "query",
        )?;
        let max = limits.map_or(usize::MAX, |l| l.max_results);
        let mut triples = Vec::new();
        for quad in RdfParser::from_format(RdfFormat::NTriples).for_slice(&body) {
            if triples.len() == max {
                return Err(KbError::TooManyResults { limit: max });
            }
            let quad =
                quad.map_err(|e| self.query_error("reading a graph result", e.to_string()))?;
            triples.push(Triple::from(quad));
        }
        Ok(QueryOutcome::Graph(triples))
    }

    /// The solutions of a SELECT query as rows of terms.
    fn rows(&self, sparql: &str) -> KbResult<(Vec<String>, Rows)> {
        match self.select(sparql, None)? {
            QueryOutcome::Solutions { variables, rows } => Ok((
                variables.iter().map(|v| v.as_str().to_owned()).collect(),
                rows,
            )),
            _ => Err(self.unexpected("a SELECT query did not return solutions")),
        }
    }

    fn unexpected(&self, message: &str) -> KbError {
        self.query_error("reading query results", message)
    }

    /// An error about a response of the query endpoint.
    fn query_error(&self, action: &'static str, message: impl ToString) -> KbError {
        KbError::Remote {
            url: self.config.query_url.clone(),
            action,
            message: message.to_string(),
        }
    }

    /// Sends the update requests of `write` in order.
    fn send_updates(&self, requests: &[String]) -> KbResult<()> {
        for (i, request) in requests.iter().enumerate() {
            self.post(
                &self.config.update_url,
                "application/sparql-update",
                "*/*",
                request,
                None,
                "update",
            )?;
            tracing::debug!(
                request = i + 1,
                of = requests.len(),
                bytes = request.len(),
                "sparql update sent"
            );
        }
        Ok(())
    }
}

impl GraphBackend for RemoteSparql {
    fn quads(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<Vec<Quad>> {
        let query = format!(
            "SELECT * WHERE {}",
            self.pattern(subject, predicate, object, graph)?
        );
        let (variables, rows) = self.rows(&query)?;
        let column = |name: &str| variables.iter().position(|v| v == name);
        let (cs, cp, co, cg) = (column("s"), column("p"), column("o"), column("g"));
        let mut quads = Vec::with_capacity(rows.len());
        for row in rows {
            let value = |c: Option<usize>| c.and_then(|c| row[c].clone()).map(unskolemize);
            let subject = match (subject, value(cs)) {
                (Some(s), _) => s.into_owned(),
                (None, Some(Term::NamedNode(n))) => n.into(),
                (None, Some(Term::BlankNode(b))) => b.into(),
                (None, other) => return Err(self.unexpected(&format!("bad subject {other:?}"))),
            };
            let predicate = match (predicate, value(cp)) {
                (Some(p), _) => p.into_owned(),
                (None, Some(Term::NamedNode(n))) => n,
                (None, other) => return Err(self.unexpected(&format!("bad predicate {other:?}"))),
            };
            let object = match (object, value(co)) {
                (Some(o), _) => o.into_owned(),
                (None, Some(o)) => o,
                (None, None) => return Err(self.unexpected("unbound object")),
            };
            let graph_name = match (graph, value(cg)) {
                (Some(g), _) => g.into_owned(),
                (None, Some(Term::NamedNode(n))) => GraphName::NamedNode(n),
                (None, Some(Term::BlankNode(b))) => GraphName::BlankNode(b),
                (None, _) => GraphName::DefaultGraph,
            };
            quads.push(Quad::new(subject, predicate, object, graph_name));
        }
        Ok(quads)
    }

    fn matches_any(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<bool> {
        let query = format!("ASK {}", self.pattern(subject, predicate, object, graph)?);
        match self.select(&query, None)? {
            QueryOutcome::Boolean(b) => Ok(b),
            _ => Err(self.unexpected("an ASK query did not return a boolean")),
        }
    }

    fn named_graphs(&self) -> KbResult<Vec<NamedNode>> {
        let (_, rows) = self.rows("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.into_iter().next().flatten() {
                Some(Term::NamedNode(g)) => Some(g),
                _ => None,
            })
            .collect())
    }

    fn quad_count(&self) -> KbResult<usize> {
        let (_, rows) = self.rows(
            "SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }",
        )?;
        match rows.first().and_then(|row| row.first()).cloned().flatten() {
            Some(Term::Literal(n)) => n
                .value()
                .parse()
                .map_err(|_| self.unexpected(&format!("count {n} is not a number"))),
            other => Err(self.unexpected(&format!("no count: {other:?}"))),
        }
    }

    fn query(&self, sparql: &str, limits: Option<&QueryLimits>) -> KbResult<QueryOutcome> {
        // Parsed here, with the project prefixes, so that a syntax error is ours to report and
        // the store receives the query with full IRIs whatever prefixes it predeclares.
        let mut parser = spargebra::SparqlParser::new();
        for (prefix, iri) in PREFIXES {
            parser = parser
                .with_prefix(*prefix, *iri)
                .map_err(|e| KbError::QuerySyntax(e.to_string()))?;
        }
        let query = parser
            .parse_query(sparql)
            .map_err(|e| KbError::QuerySyntax(e.to_string()))?;
        let text = query.to_string();
        let outcome = match query {
            spargebra::Query::Select { .. } | spargebra::Query::Ask { .. } => {
                self.select(&text, limits)?
            }
            spargebra::Query::Construct { .. } | spargebra::Query::Describe { .. } => {
                self.construct(&text, limits)?
            }
        };
        Ok(unskolemize_outcome(outcome))
    }

    fn write(&self, write: &GraphWrite) -> KbResult<()> {
        if write.is_empty() {
            return Ok(());
        }
        let skolemized = GraphWrite {
            remove: write.remove.iter().map(skolemize).collect(),
            drop_graphs: write.drop_graphs.clone(),
            insert: write.insert.iter().map(skolemize).collect(),
        };
        let requests = update_requests(&skolemized, self.config.max_update_bytes);
        if requests.len() > 1 {
            tracing::info!(
                requests = requests.len(),
                url = %self.config.update_url,
                "the write is larger than one update request; sending it in order, version record last"
            );
        }
        self.send_updates(&requests)
    }

    fn location(&self) -> String {
        format!("SPARQL endpoint {}", self.config.query_url)
    }
}

impl RemoteSparql {
    /// The group graph pattern matching a quad pattern: `?s ?p ?o` for the free positions, and
    /// `?g` for the graph when it is free (bound to nothing for the default graph).
    fn pattern(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<String> {
        let s = match subject {
            Some(NamedOrBlankNodeRef::NamedNode(n)) => n.to_string(),
            Some(NamedOrBlankNodeRef::BlankNode(b)) => skolem_iri(&b.into_owned()).to_string(),
            None => "?s".to_owned(),
        };
        let p = predicate.map_or_else(|| "?p".to_owned(), |p| p.to_string());
        let o = match object {
            Some(TermRef::BlankNode(b)) => skolem_iri(&b.into_owned()).to_string(),
            Some(o) => o.to_string(),
            None => "?o".to_owned(),
        };
        let triple = format!("{s} {p} {o}");
        Ok(match graph {
            Some(GraphNameRef::DefaultGraph) => format!("{{ {triple} }}"),
            Some(GraphNameRef::NamedNode(g)) => format!("{{ GRAPH {g} {{ {triple} }} }}"),
            Some(GraphNameRef::BlankNode(b)) => {
                format!("{{ GRAPH {} {{ {triple} }} }}", skolem_iri(&b.into_owned()))
            }
            None => format!("{{ {{ {triple} }} UNION {{ GRAPH ?g {{ {triple} }} }} }}"),
        })
    }
}

/// The update requests of `write`: `DELETE DATA`, `DROP SILENT GRAPH` and `INSERT DATA`
/// operations in the order of the write, packed into requests of at most `max_bytes` (a
/// single quad longer than that gets a request of its own).
fn update_requests(write: &GraphWrite, max_bytes: usize) -> Vec<String> {
    let mut packer = UpdatePacker {
        max_bytes,
        requests: Vec::new(),
        current: String::new(),
        open: None,
    };
    for quad in &write.remove {
        packer.data("DELETE DATA", quad);
    }
    for graph in &write.drop_graphs {
        packer.operation(&format!("DROP SILENT GRAPH {graph}"));
    }
    for quad in &write.insert {
        packer.data("INSERT DATA", quad);
    }
    packer.finish()
}

/// Packs update operations into requests of bounded size.
struct UpdatePacker {
    max_bytes: usize,
    requests: Vec<String>,
    current: String,
    /// The data block being written: its operation and graph.
    open: Option<(&'static str, GraphName)>,
}

impl UpdatePacker {
    /// Adds one quad to a `DELETE DATA` or `INSERT DATA` block of its graph.
    fn data(&mut self, operation: &'static str, quad: &Quad) {
        let triple = format!("{} {} {} .\n", quad.subject, quad.predicate, quad.object);
        let same_block = self
            .open
            .as_ref()
            .is_some_and(|(op, g)| *op == operation && *g == quad.graph_name);
        let header = block_header(operation, &quad.graph_name);
        let needed = triple.len() + if same_block { 0 } else { header.len() + 4 } + 4;
        if !self.current.is_empty() && self.current.len() + needed > self.max_bytes {
            self.flush();
        }
        if !self
            .open
            .as_ref()
            .is_some_and(|(op, g)| *op == operation && *g == quad.graph_name)
        {
            self.close_block();
            self.separate();
            self.current.push_str(&header);
            self.open = Some((operation, quad.graph_name.clone()));
        }
        self.current.push_str(&triple);
    }

    /// Adds an operation that carries no data.
    fn operation(&mut self, operation: &str) {
        self.close_block();
        if !self.current.is_empty() && self.current.len() + operation.len() + 4 > self.max_bytes {
            self.flush();
        }
        self.separate();
        self.current.push_str(operation);
    }

    fn separate(&mut self) {
        if !self.current.is_empty() {
            self.current.push_str(" ;\n");
        }
    }

    fn close_block(&mut self) {
        if let Some((_, graph)) = self.open.take() {
            self.current.push_str(match graph {
                GraphName::DefaultGraph => "}",
                _ => "} }",
            });
        }
    }

    fn flush(&mut self) {
        self.close_block();
        if !self.current.is_empty() {
            self.requests.push(std::mem::take(&mut self.current));
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.requests
    }
}

/// `INSERT DATA { GRAPH <g> {` (or without the graph for the default graph).
fn block_header(operation: &str, graph: &GraphName) -> String {
    let mut header = format!("{operation} {{ ");
    if let GraphName::NamedNode(g) = graph {
        let _ = write!(header, "GRAPH {g} {{ ");
    }
    header.push('\n');
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxigraph::model::{Literal, NamedNode};
    use oxigraph::store::Store;

    fn quad(i: usize, graph: Option<&str>) -> Quad {
        Quad::new(
            NamedNode::new_unchecked(format!("http://example.org/s{i}")),
            NamedNode::new_unchecked("http://example.org/p"),
            Literal::new_simple_literal(format!("value \"{i}\"\n")),
            graph.map_or(GraphName::DefaultGraph, |g| {
                NamedNode::new_unchecked(g).into()
            }),
        )
    }

    #[test]
    fn updates_are_packed_in_order_and_run_as_written() {
        let store = Store::new().unwrap();
        let old: Vec<Quad> = (0..50)
            .map(|i| quad(i, Some("http://example.org/old")))
            .collect();
        store.extend(old.clone()).unwrap();
        store.insert(&quad(999, None)).unwrap();
        let write = GraphWrite {
            remove: vec![quad(999, None)],
            drop_graphs: vec![NamedNode::new_unchecked("http://example.org/old")],
            insert: (0..200)
                .map(|i| quad(i, Some("http://example.org/new")))
                .chain((0..20).map(|i| quad(i, None)))
                .collect(),
        };
        let requests = update_requests(&write, 2_000);
        assert!(requests.len() > 5, "{} requests", requests.len());
        assert!(
            requests.iter().all(|r| r.len() <= 2_000),
            "a request is too long"
        );
        for request in &requests {
            store
                .update(request)
                .unwrap_or_else(|e| panic!("{e}: {request}"));
        }
        let mut expected: Vec<Quad> = write.insert.clone();
        expected.sort_by_key(|q| q.to_string());
        let mut held: Vec<Quad> = store.iter().map(Result::unwrap).collect();
        held.sort_by_key(|q| q.to_string());
        assert_eq!(held, expected);
        // One request when it fits.
        assert_eq!(update_requests(&write, 1 << 20).len(), 1);
    }
}
