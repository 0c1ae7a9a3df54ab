//! The knowledge base: an Oxigraph store (RocksDB on disk, or in memory for tests) holding one
//! named fact graph per source file, loaded only after SHACL validation, with RDFS entailments
//! materialised into their own graph.
//!
//! Loading is all or nothing: files are parsed, merged with what the store already holds,
//! validated and reasoned over in memory; only then does one store transaction replace the fact
//! graphs they declare. A syntax error or a shape violation leaves the store untouched.

mod error;
mod export;
mod infer;
pub mod matrix;
mod parse;
mod query;
mod stats;
mod validate;
mod version;

pub use error::{KbError, KbResult};
pub use export::ExportFormat;
pub use parse::{format_of, parse_bytes, parse_file, ParsedFile};
pub use query::{OutputFormat, QueryLimits, QueryOutcome};
pub use stats::{Stats, StatusCount};
pub use validate::{Shapes, Violation};

use crate::vocab::{akg, compact, prov, INFERRED_GRAPH, SOURCE};
use oxigraph::model::vocab::rdf;
use oxigraph::model::{
    GraphName, GraphNameRef, Literal, NamedNode, NamedOrBlankNode, Quad, Triple,
};
use oxigraph::store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The knowledge base: the store plus the shapes every write must satisfy.
pub struct KnowledgeBase {
    store: Store,
    shapes: Shapes,
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
    new_graphs: BTreeMap<NamedNode, Vec<Quad>>,
    inferred: Vec<Triple>,
}

impl KnowledgeBase {
    /// Opens (or creates) the on-disk store in `store_dir`.
    pub fn open(store_dir: &Path, shapes_file: &Path) -> KbResult<Self> {
        std::fs::create_dir_all(store_dir).map_err(|e| KbError::io(store_dir, e))?;
        Ok(Self {
            store: Store::open(store_dir)?,
            shapes: Shapes::from_file(shapes_file)?,
        })
    }

    /// A fresh in-memory store (tests, dry runs).
    pub fn in_memory(shapes_file: &Path) -> KbResult<Self> {
        Ok(Self {
            store: Store::new()?,
            shapes: Shapes::from_file(shapes_file)?,
        })
    }

    /// The underlying Oxigraph store, for read access by other modules.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The compiled shapes.
    pub fn shapes(&self) -> &Shapes {
        &self.shapes
    }

    /// Parses, validates and loads `paths` in one transaction. Each file's fact graphs replace
    /// the graphs of the same name. On any error nothing is written.
    pub fn load_files(&self, paths: &[PathBuf]) -> KbResult<LoadReport> {
        let parsed = paths
            .iter()
            .map(|p| parse_file(p))
            .collect::<KbResult<Vec<_>>>()?;
        self.load_parsed(parsed)
    }

    /// Like [`Self::load_files`] for files already parsed.
    pub fn load_parsed(&self, parsed: Vec<ParsedFile>) -> KbResult<LoadReport> {
        let plan = self.plan(parsed)?;
        if !plan.report.violations.is_empty() {
            return Err(KbError::Invalid(plan.report.violations));
        }
        self.commit(plan)
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
        let asserted = self.asserted_quads(&BTreeSet::new())?;
        self.shapes
            .validate(asserted.iter().map(|q| q.as_ref().into()))
    }

    /// Quads of every fact graph except `skip` and the inferred graph.
    fn asserted_quads(&self, skip: &BTreeSet<NamedNode>) -> KbResult<Vec<Quad>> {
        let mut quads = Vec::new();
        for quad in self.store.iter() {
            let quad = quad?;
            let keep = match &quad.graph_name {
                GraphName::NamedNode(g) => g.as_ref() != INFERRED_GRAPH && !skip.contains(g),
                _ => true,
            };
            if keep {
                quads.push(quad);
            }
        }
        Ok(quads)
    }

    fn plan(&self, parsed: Vec<ParsedFile>) -> KbResult<Plan> {
        let mut owner: HashMap<NamedNode, PathBuf> = HashMap::new();
        let mut new_graphs: BTreeMap<NamedNode, Vec<Quad>> = BTreeMap::new();
        let mut files = Vec::new();
        for file in &parsed {
            for (graph, quads) in &file.graphs {
                if let Some(first) = owner.insert(graph.clone(), file.path.clone()) {
                    return Err(KbError::DuplicateGraph {
                        graph: graph.as_str().to_owned(),
                        first,
                        second: file.path.clone(),
                    });
                }
                new_graphs.insert(graph.clone(), quads.clone());
            }
            files.push(FileReport {
                path: file.path.clone(),
                graphs: file.graphs.keys().map(|g| compact(g.as_str())).collect(),
                triples: file.len(),
            });
        }

        let replaced: BTreeSet<NamedNode> = new_graphs.keys().cloned().collect();
        let mut candidate = self.asserted_quads(&replaced)?;
        candidate.extend(new_graphs.values().flatten().cloned());

        let triples: Vec<_> = candidate.iter().map(|q| q.as_ref().into()).collect();
        let mut violations = self.shapes.validate(triples.iter().copied())?;
        locate(&mut violations, &parsed);
        let inferred = if violations.is_empty() {
            infer::rdfs_entailments(triples.iter().copied())?
        } else {
            Vec::new()
        };

        let report = LoadReport {
            files,
            violations,
            inferred: inferred.len(),
            asserted: candidate.len(),
            committed: false,
            kb_version: String::new(),
        };
        Ok(Plan {
            report,
            new_graphs,
            inferred,
        })
    }

    fn commit(&self, plan: Plan) -> KbResult<LoadReport> {
        let Plan {
            mut report,
            new_graphs,
            inferred,
        } = plan;
        let inferred_graph = GraphNameRef::from(INFERRED_GRAPH);
        let mut tx = self.store.start_transaction()?;
        for (graph, quads) in &new_graphs {
            tx.clear_graph(graph)?;
            tx.insert_named_graph(graph);
            for quad in quads {
                tx.insert(quad);
            }
        }
        tx.clear_graph(inferred_graph)?;
        for quad in inferred_graph_header() {
            tx.insert(&quad);
        }
        for t in &inferred {
            tx.insert(t.as_ref().in_graph(inferred_graph));
        }
        tx.commit()?;
        report.committed = true;
        report.kb_version = self.kb_version()?;
        Ok(report)
    }
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
