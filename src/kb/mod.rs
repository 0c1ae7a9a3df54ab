//! The knowledge base: a quad store (an embedded Oxigraph store on disk or in memory, or any
//! SPARQL 1.1 store: see [`backend`]) holding one named fact graph per source file or curation
//! edit, written only after SHACL validation, with
//! RDFS entailments materialised into their own graph.
//!
//! Every write — a load of files, a curation edit, a curator's SPARQL update — is one change
//! set of asserted quads that goes through one path (`commit.rs`): the candidate state (asserted
//! quads − removed + added) is validated and reasoned over in memory, hashed into its version id,
//! and only then written in one store write together with the entailments, the store's
//! default graph (the RDF merge of all fact graphs, so that queries count a fact once) and its
//! record in the version log (`history.rs`). A syntax error, an invalid edit or a shape
//! violation leaves the store untouched. Writers are serialised by a lock, so no two commits
//! validate against the same old state.

pub mod backend;
mod commit;
mod curate;
mod error;
mod export;
mod history;
mod infer;
pub mod matrix;
mod parse;
mod query;
mod stats;
mod validate;
mod version;

pub use curate::{Edit, EditOutcome, EditRequest};
pub use error::{KbError, KbResult};
pub use export::ExportFormat;
pub(crate) use history::date_time;
pub use history::{VersionDiff, VersionRecord};
pub use parse::{format_of, parse_bytes, parse_file, ParsedFile};
pub use query::{show_term, OutputFormat, QueryLimits, QueryOutcome};
pub use stats::{Stats, StatusCount};
pub use validate::{Shapes, Violation};
pub use version::version_of;

use crate::vocab::{akg, compact, is_system_graph, prov, INFERRED_GRAPH, SOURCE};
use backend::{EmbeddedStore, GraphBackend, RemoteSparql, RemoteSparqlConfig};
use commit::{Action, Agent, ChangeSet, CommitInfo};
use oxigraph::model::vocab::rdf;
use oxigraph::model::{GraphName, Literal, NamedNode, NamedOrBlankNode, Quad};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The knowledge base: the graph backend plus the shapes every write must satisfy.
pub struct KnowledgeBase {
    store: Box<dyn GraphBackend>,
    shapes: Shapes,
    /// Held by every writer from reading the state it validates against to its commit.
    writer: Mutex<()>,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("shapes", &self.shapes)
            .finish_non_exhaustive()
    }
}

/// What one file contributed to a load.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// The fact graphs it declares.
    pub graphs: Vec<String>,
    /// Number of triples it holds.
    pub triples: usize,
}

/// The outcome of checking (and, for a load, committing) a set of files.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// One entry per file, in the order given.
    pub files: Vec<FileReport>,
    /// SHACL violations of the store as it would be after the load (empty when it conforms).
    pub violations: Vec<Violation>,
    /// Number of RDFS entailments materialised.
    pub inferred: usize,
    /// Number of asserted triples in the store after the load.
    pub asserted: usize,
    /// True when the store was changed.
    pub committed: bool,
    /// The KB version id after the load (see [`KnowledgeBase::kb_version`]); empty for a dry run.
    pub kb_version: String,
}

/// A load that has been parsed, validated and reasoned over, but not yet written.
struct Plan {
    report: LoadReport,
    prepared: commit::Prepared,
}

impl KnowledgeBase {
    /// Opens (or creates) the on-disk store in `store_dir`. A store written before the default
    /// graph held the merge of the fact graphs gets it rebuilt here.
    pub fn open(store_dir: &Path, shapes_file: &Path) -> KbResult<Self> {
        let kb = Self::with_backend(Box::new(EmbeddedStore::open(store_dir)?), shapes_file)?;
        kb.ensure_default_graph()?;
        Ok(kb)
    }

    /// A fresh in-memory store (tests, dry runs).
    pub fn in_memory(shapes_file: &Path) -> KbResult<Self> {
        Self::with_backend(Box::new(EmbeddedStore::in_memory()?), shapes_file)
    }

    /// The graph of a SPARQL 1.1 store (queried and updated over the SPARQL 1.1 Protocol).
    pub fn remote(config: RemoteSparqlConfig, shapes_file: &Path) -> KbResult<Self> {
        let kb = Self::with_backend(Box::new(RemoteSparql::connect(config)?), shapes_file)?;
        kb.ensure_default_graph()?;
        Ok(kb)
    }

    /// The knowledge base in `backend`.
    pub fn with_backend(backend: Box<dyn GraphBackend>, shapes_file: &Path) -> KbResult<Self> {
        Ok(Self {
            store: backend,
            shapes: Shapes::from_file(shapes_file)?,
            writer: Mutex::new(()),
        })
    }

    /// The graph backend, for read access by other modules.
    pub fn backend(&self) -> &dyn GraphBackend {
        self.store.as_ref()
    }

    /// The compiled shapes.
    pub fn shapes(&self) -> &Shapes {
        &self.shapes
    }

    /// Parses, validates and loads `paths` in one transaction. Each file's fact graphs replace
    /// the graphs of the same name. On any error nothing is written. The load is recorded in
    /// the version log (action `load`).
    pub fn load_files(&self, paths: &[PathBuf]) -> KbResult<LoadReport> {
        let parsed = paths
            .iter()
            .map(|p| parse_file(p))
            .collect::<KbResult<Vec<_>>>()?;
        self.load_parsed(parsed)
    }

    /// Like [`Self::load_files`] for files already parsed.
    pub fn load_parsed(&self, parsed: Vec<ParsedFile>) -> KbResult<LoadReport> {
        let _writer = self.write_lock();
        let head = self.head()?;
        let reason = load_reason(&parsed);
        let Plan {
            mut report,
            prepared,
        } = self.plan(parsed)?;
        if !report.violations.is_empty() {
            return Err(KbError::Invalid(report.violations));
        }
        let info = CommitInfo {
            action: Action::Load,
            agent: Agent::loader(),
            reason,
            graph: None,
            time: chrono::Utc::now(),
        };
        let record = self.commit(&prepared, &head, &info)?;
        report.committed = true;
        report.kb_version = record.id;
        Ok(report)
    }

    /// Everything a load of `paths` would do, without writing: the violations are returned in
    /// the report rather than as an error.
    pub fn check_files(&self, paths: &[PathBuf]) -> KbResult<LoadReport> {
        let parsed = paths
            .iter()
            .map(|p| parse_file(p))
            .collect::<KbResult<Vec<_>>>()?;
        Ok(self.plan(parsed)?.report)
    }

    /// Validates what the store holds now.
    pub fn validate_store(&self) -> KbResult<Vec<Violation>> {
        let asserted = self.asserted_quads()?;
        self.shapes
            .validate(asserted.iter().map(|q| q.as_ref().into()))
    }

    /// Quads of every fact graph but the inferred one: never the default graph (a merge of the
    /// fact graphs) nor a system graph.
    fn asserted_quads(&self) -> KbResult<Vec<Quad>> {
        let mut quads = Vec::new();
        for graph in self.store.named_graphs()? {
            if is_fact_graph(graph.as_ref()) {
                quads.extend(
                    self.store
                        .quads(None, None, None, Some(graph.as_ref().into()))?,
                );
            }
        }
        Ok(quads)
    }

    fn plan(&self, parsed: Vec<ParsedFile>) -> KbResult<Plan> {
        let mut owner: HashMap<NamedNode, PathBuf> = HashMap::new();
        let mut change = ChangeSet::default();
        let mut files = Vec::new();
        for file in &parsed {
            for (graph, quads) in &file.graphs {
                if !is_fact_graph(graph.as_ref()) {
                    return Err(KbError::ReservedGraph {
                        graph: compact(graph.as_str()),
                        why: "it is maintained by the knowledge base itself",
                    });
                }
                if let Some(first) = owner.insert(graph.clone(), file.path.clone()) {
                    return Err(KbError::DuplicateGraph {
                        graph: graph.as_str().to_owned(),
                        first,
                        second: file.path.clone(),
                    });
                }
                change.added.extend(quads.iter().cloned());
            }
            files.push(FileReport {
                path: file.path.clone(),
                graphs: file.graphs.keys().map(|g| compact(g.as_str())).collect(),
                triples: file.len(),
            });
        }

        // A file's graphs replace the graphs of the same name: all their quads go.
        let base = self.asserted_quads()?;
        change.removed = base
            .iter()
            .filter(|q| matches!(&q.graph_name, GraphName::NamedNode(g) if owner.contains_key(g)))
            .cloned()
            .collect();
        let mut prepared = self.prepare(base, change)?;
        locate(&mut prepared.violations, &parsed);

        let report = LoadReport {
            files,
            violations: prepared.violations.clone(),
            inferred: prepared.inferred.len(),
            asserted: prepared.asserted.len(),
            committed: false,
            kb_version: String::new(),
        };
        Ok(Plan { report, prepared })
    }

    /// The writer lock. A writer that panicked left nothing half-written (its transaction was
    /// never committed), so a poisoned lock is taken over rather than refused.
    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// True for a named graph that holds asserted facts: neither the inferred graph nor a system
/// graph.
fn is_fact_graph(graph: oxigraph::model::NamedNodeRef<'_>) -> bool {
    graph != INFERRED_GRAPH && !is_system_graph(graph)
}

/// The reason recorded for a load: the files it read.
fn load_reason(parsed: &[ParsedFile]) -> String {
    let names: Vec<String> = parsed
        .iter()
        .map(|f| {
            f.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| f.path.display().to_string())
        })
        .collect();
    format!("load of {}", names.join(", "))
}

/// Provenance of the inferred graph: produced by the RDFS reasoner at load time.
fn inferred_graph_header() -> Vec<Quad> {
    let g = INFERRED_GRAPH.into_owned();
    let reasoner = NamedNode::new_unchecked(format!("{SOURCE}rdfs-reasoner"));
    let title = Literal::new_language_tagged_literal_unchecked(
        "RDFS entailments materialised at load time",
        "en",
    );
    let label = Literal::new_language_tagged_literal_unchecked("assetkg RDFS rules", "en");
    vec![
        Quad::new(g.clone(), rdf::TYPE, akg::FACT_GRAPH, g.clone()),
        Quad::new(g.clone(), crate::vocab::dct::TITLE, title, g.clone()),
        Quad::new(
            g.clone(),
            prov::WAS_ATTRIBUTED_TO,
            reasoner.clone(),
            g.clone(),
        ),
        Quad::new(g.clone(), akg::VETTING_STATUS, akg::PROPOSED, g.clone()),
        Quad::new(
            reasoner.clone(),
            crate::vocab::skos::PREF_LABEL,
            label,
            g.clone(),
        ),
        Quad::new(reasoner, rdf::TYPE, akg::SOURCE, g),
    ]
}

/// Names, for each violation, the files that state facts about its focus node.
fn locate(violations: &mut [Violation], parsed: &[ParsedFile]) {
    if violations.is_empty() {
        return;
    }
    let mut files_of: HashMap<String, BTreeSet<&Path>> = HashMap::new();
    for file in parsed {
        for quad in file.quads() {
            if let NamedOrBlankNode::NamedNode(s) = &quad.subject {
                files_of
                    .entry(compact(s.as_str()))
                    .or_default()
                    .insert(&file.path);
            }
        }
    }
    for v in violations {
        if let Some(files) = files_of.get(&v.focus) {
            v.files = files.iter().map(|p| p.to_path_buf()).collect();
        }
    }
}
