//! SHACL validation with the rudof `shacl` engine (native mode, in memory). The shapes are
//! compiled once; each validation copies the candidate triples into the engine's own graph,
//! because the engine reads its own in-memory graph type rather than an Oxigraph store.

use super::error::{KbError, KbResult};
use crate::vocab::compact;
use oxigraph::model::TripleRef;
use rudof_rdf::rdf_core::RDFFormat;
use rudof_rdf::rdf_impl::{OxigraphInMemory, ReaderMode};
use serde::Serialize;
use shacl::ir::IRSchema;
use shacl::rdf::ShaclParser;
use shacl::validator::processor::{GraphValidation, ShaclProcessor};
use shacl::validator::store::Graph;
use shacl::validator::{ShaclConfig, ShaclValidationMode};
use sparql_service::RdfData;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One SHACL violation: which node broke which shape, along which path, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The focus node (IRI or blank node) that does not conform.
    pub focus: String,
    /// The property path of the failing constraint, if it is a property shape.
    pub path: Option<String>,
    /// The shape whose constraint failed.
    pub shape: Option<String>,
    /// The SHACL constraint component, e.g. `sh:MinCountConstraintComponent`.
    pub component: String,
    /// The offending value, when there is one.
    pub value: Option<String>,
    /// The shape's message, or a description of the constraint.
    pub message: String,
    /// The files that state facts about the focus node (filled in by the loader).
    pub files: Vec<PathBuf>,
}

impl Violation {
    /// The first `max` violations, one per line, for error messages and reports.
    pub fn summary(violations: &[Violation], max: usize) -> String {
        let mut out = String::new();
        for v in violations.iter().take(max) {
            let _ = writeln!(out, "  - {v}");
        }
        if violations.len() > max {
            let _ = writeln!(out, "  … and {} more", violations.len() - max);
        }
        out
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "focus {}", self.focus)?;
        if let Some(path) = &self.path {
            write!(f, ", path {path}")?;
        }
        if let Some(value) = &self.value {
            write!(f, ", value {value}")?;
        }
        if let Some(shape) = &self.shape {
            write!(f, ", shape {shape}")?;
        }
        write!(f, " ({}): {}", self.component, self.message)?;
        if !self.files.is_empty() {
            let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
            write!(f, " [in {}]", files.join(", "))?;
        }
        Ok(())
    }
}

/// Compiled SHACL shapes.
pub struct Shapes {
    schema: IRSchema,
    path: PathBuf,
}

impl std::fmt::Debug for Shapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shapes")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Shapes {
    /// Reads and compiles a Turtle file of SHACL shapes.
    pub fn from_file(path: &Path) -> KbResult<Self> {
        let shapes_error = |message: String| KbError::Shapes {
            path: path.to_owned(),
            message,
        };
        let graph =
            OxigraphInMemory::from_path(path, &RDFFormat::Turtle, None, &ReaderMode::default())
                .map_err(|e| shapes_error(e.to_string()))?;
        let data = RdfData::from_graph(graph).map_err(|e| shapes_error(e.to_string()))?;
        let ast = ShaclParser::new(data)
            .parse()
            .map_err(|e| shapes_error(e.to_string()))?;
        let schema = IRSchema::compile(&ast).map_err(|e| shapes_error(e.to_string()))?;
        Ok(Self {
            schema,
            path: path.to_owned(),
        })
    }

    /// The file the shapes came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates the union of `triples` and returns every violation (empty when it conforms).
    pub fn validate<'a>(
        &self,
        triples: impl IntoIterator<Item = TripleRef<'a>>,
    ) -> KbResult<Vec<Violation>> {
        let mut graph = OxigraphInMemory::new();
        for t in triples {
            graph
                .add_triple_ref(t.subject, t.predicate, t.object)
                .map_err(|e| KbError::Validation(e.to_string()))?;
        }
        let store = Graph::try_from(graph).map_err(|e| KbError::Validation(e.to_string()))?;
        let mut validation = GraphValidation::from(store);
        let report = validation
            .validate(
                &self.schema,
                &ShaclValidationMode::Native,
                &ShaclConfig::default(),
            )
            .map_err(|e| KbError::Validation(e.to_string()))?;
        let mut violations: Vec<Violation> = report
            .results()
            .iter()
            .map(|r| Violation {
                focus: compact_term(&r.focus_node().to_string()),
                path: r.path().map(|p| compact_term(&p.to_string())),
                shape: r.source().map(|s| compact_term(&s.to_string())),
                component: compact_term(&r.constraint_component().to_string()),
                value: r.value().map(|v| compact_term(&v.to_string())),
                message: message_text(r),
                files: Vec::new(),
            })
            .collect();
        violations.sort_by(|a, b| {
            (&a.focus, &a.path, &a.component).cmp(&(&b.focus, &b.path, &b.component))
        });
        violations.dedup();
        Ok(violations)
    }
}

fn message_text(result: &shacl::validator::report::ValidationResult) -> String {
    let message = result.message().to_string();
    let message = message.trim().trim_matches('"');
    if message.is_empty() || message == "{}" {
        "constraint not satisfied".to_owned()
    } else {
        message.to_owned()
    }
}

/// Shortens `<iri>` (or a bare IRI) with the project prefixes; leaves anything else as it is.
fn compact_term(term: &str) -> String {
    let inner = term
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(term);
    if inner.starts_with("http://") || inner.starts_with("https://") || inner.starts_with("file:") {
        compact_shacl(inner)
    } else {
        term.to_owned()
    }
}

fn compact_shacl(iri: &str) -> String {
    const SH: &str = "http://www.w3.org/ns/shacl#";
    match iri.strip_prefix(SH) {
        Some(local) => format!("sh:{local}"),
        None => compact(iri),
    }
}
