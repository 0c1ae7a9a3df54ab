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
    /// A remote SPARQL store refused a request or could not be reached.
    #[error("sparql store {url}: {action}: {message}")]
    Remote {
        url: String,
        action: &'static str,
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
    /// A load, an edit or an update would write a graph it must not write.
    #[error("graph {graph} cannot be written: {why}; nothing was written")]
    ReservedGraph { graph: String, why: &'static str },
    /// A SPARQL update writes into a named graph that is not declared a fact graph.
    #[error("graph {graph} is not declared as akg:FactGraph (with its source and vetting status), so the facts written into it would have no provenance; insert into the default graph instead")]
    UndeclaredFactGraph { graph: String },
    /// A curation edit names something that is not an IRI.
    #[error("{field}: {value:?} is not an IRI or a prefixed name ({message})")]
    BadIri {
        field: &'static str,
        value: String,
        message: String,
    },
    /// A required field of a curation edit is empty.
    #[error("{field}: must not be empty")]
    MissingField { field: &'static str },
    /// A curation edit refers to an entity that is not in the knowledge base.
    #[error("{field}: no entity {iri} in the knowledge base (it has no asserted rdf:type)")]
    UnknownEntity { field: &'static str, iri: String },
    /// An entity to add already has facts.
    #[error("iri: entity {iri} already exists; edit its facts instead of adding it again")]
    EntityExists { iri: String },
    /// The class of a new entity is not one of the ontology's entity classes.
    #[error("class: {class:?} is not an entity class of the ontology; use one of {known}")]
    UnknownClass { class: String, known: String },
    /// A curation edit uses a predicate the ontology does not declare.
    #[error("{field}: {iri} is not an {expected} of the ontology (graph:ontology)")]
    UnknownPredicate {
        field: &'static str,
        iri: String,
        expected: &'static str,
    },
    /// A new entity's IRI is outside the namespace of knowledge-base individuals.
    #[error("iri: {iri} is outside the namespace of knowledge-base entities ({namespace})")]
    ForeignIri {
        iri: String,
        namespace: &'static str,
    },
    /// The fact to propose or assert is already asserted.
    #[error("fact {fact} is already asserted in {graphs}; vet it if it is proposed, or retract it first")]
    FactExists { fact: String, graphs: String },
    /// The fact to retract, vet or reject is in no fact graph.
    #[error("fact {fact} is not asserted in any fact graph")]
    NoSuchFact { fact: String },
    /// The fact to vet or reject is not proposed.
    #[error("fact {fact} is not proposed: it is asserted in {graphs}")]
    NotProposed { fact: String, graphs: String },
    /// A curation edit would change an axiom of the ontology.
    #[error("fact {fact} is an axiom of the ontology (graph:ontology); change the ontology file and load it instead")]
    OntologyAxiom { fact: String },
    /// A curation edit names a provenance statement of a fact graph rather than a fact.
    #[error("fact {fact} is the provenance of fact graph {graph}, not a fact; it changes only with its graph")]
    ProvenanceStatement { fact: String, graph: String },
    /// An edit or update that changes no asserted fact.
    #[error("nothing to commit: {0}")]
    NoChange(String),
    /// A SPARQL update does not parse.
    #[error("sparql update syntax error: {0}")]
    UpdateSyntax(String),
    /// A SPARQL update failed while running (on the scratch copy; the store is unchanged).
    #[error("sparql update failed: {0}")]
    UpdateEvaluation(String),
    /// A version asked for is not in the version log.
    #[error("version {0:?} is not in the version log (give a sha256:… id or a sequence number)")]
    UnknownVersion(String),
    /// A record of the version log is malformed.
    #[error("version log: {iri}: {message}")]
    History { iri: String, message: String },
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
