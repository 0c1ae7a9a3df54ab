//! Errors of the knowledge-base module. Each names what failed and where: file, line and column
//! for syntax, focus node, path and shape for a SHACL violation.

use super::validate::Violation;
use std::path::PathBuf;
use thiserror::Error;

/// An error while loading, validating, querying or exporting the knowledge base.
#[derive(Debug, Error)]
pub enum KbError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file extension names no RDF format we read.
    #[error(
        "{path}: unknown RDF format (expected .ttl, .trig, .nt, .nq, .rdf/.owl/.xml or .jsonld)"
    )]
    UnknownFormat { path: PathBuf },
    /// The file is not well-formed RDF.
    #[error("{path}:{line}:{column}: syntax error: {message}")]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// A triple file declares no fact graph, so its facts would have no provenance.
    #[error("{path}: declares no fact graph; every file needs one `<graph IRI> a akg:FactGraph` with its source (prov:wasAttributedTo) and vetting status (akg:vettingStatus)")]
    NoFactGraph { path: PathBuf },
    /// A triple file declares more than one fact graph, so its facts cannot be placed.
    #[error("{path}: declares {count} fact graphs ({graphs}); a Turtle, N-Triples, RDF/XML or JSON-LD file must declare exactly one")]
    SeveralFactGraphs {
        path: PathBuf,
        count: usize,
        graphs: String,
    },
    /// A dataset file puts triples in the default graph, where they have no provenance.
    #[error("{path}: {count} triples are in the default graph; put them in a named graph declared as akg:FactGraph")]
    DefaultGraphTriples { path: PathBuf, count: usize },
    /// A named graph is used but never declared as a fact graph.
    #[error("{path}: named graph <{graph}> is not declared as akg:FactGraph, so its facts have no provenance")]
    UndeclaredGraph { path: PathBuf, graph: String },
    /// Two files of one load write the same fact graph.
    #[error("fact graph <{graph}> is written by both {first} and {second}")]
    DuplicateGraph {
        graph: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// The data breaks the SHACL shapes; nothing was written.
    #[error("{} SHACL violation(s); nothing was written:\n{}", .0.len(), Violation::summary(.0, 20))]
    Invalid(Vec<Violation>),
    /// The SHACL shapes themselves could not be read.
    #[error("shapes {path}: {message}")]
    Shapes { path: PathBuf, message: String },
    /// The SHACL engine failed (not a violation: the validation itself could not run).
    #[error("shacl validation failed: {0}")]
    Validation(String),
    /// RDFS materialisation failed.
    #[error("rdfs reasoning failed: {0}")]
    Reasoner(String),
    /// A SPARQL query does not parse.
    #[error("sparql syntax error: {0}")]
    QuerySyntax(String),
    /// A SPARQL query failed while running.
    #[error("sparql evaluation failed: {0}")]
    QueryEvaluation(String),
    /// The relevance matrix or its name table is malformed.
    #[error("{path}:{line}: {message}")]
    Matrix {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// The underlying Oxigraph store failed.
    #[error("store: {0}")]
    Store(#[from] oxigraph::store::StorageError),
    /// Serialising RDF or results failed.
    #[error("serialisation failed: {0}")]
    Serialize(String),
    /// A query was cancelled because it ran past its time limit.
    #[error("the query was stopped after {seconds} s (the time limit)")]
    QueryTimeout { seconds: f64 },
    /// A query returned more results than allowed.
    #[error("the query returns more than {limit} results (the limit); add a LIMIT or narrow it")]
    TooManyResults { limit: usize },
}

impl KbError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the knowledge-base module.
pub type KbResult<T> = Result<T, KbError>;
