//! Reading RDF files into fact graphs. A file of triples (Turtle, N-Triples, RDF/XML, or a
//! TriG/N-Quads/JSON-LD file that names no graph) declares exactly one `akg:FactGraph` and all
//! its triples go into that named graph; a file with named graphs keeps them, and each must be
//! declared a fact graph.

use super::error::{KbError, KbResult};
use crate::vocab::akg;
use oxigraph::io::{RdfFormat, RdfParser, RdfSyntaxError};
use oxigraph::model::vocab::rdf;
use oxigraph::model::{GraphName, NamedNode, NamedOrBlankNode, Quad, Term};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The content of one RDF file, grouped by the fact graph each triple belongs to.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Quads per fact graph; every quad's graph name is the key.
    pub graphs: BTreeMap<NamedNode, Vec<Quad>>,
}

impl ParsedFile {
    /// Number of quads in the file.
    pub fn len(&self) -> usize {
        self.graphs.values().map(Vec::len).sum()
    }

    /// True when the file holds no quads.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All quads of the file.
    pub fn quads(&self) -> impl Iterator<Item = &Quad> {
        self.graphs.values().flatten()
    }
}

/// The RDF format of `path`, from its extension.
pub fn format_of(path: &Path) -> KbResult<RdfFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let format = match ext.as_str() {
        "owl" | "xml" => Some(RdfFormat::RdfXml),
        "json" => RdfFormat::from_extension("jsonld"),
        other => RdfFormat::from_extension(other),
    };
    match format {
        Some(RdfFormat::N3) | None => Err(KbError::UnknownFormat {
            path: path.to_owned(),
        }),
        Some(format) => Ok(format),
    }
}

/// Reads and parses one file. Nothing is written anywhere.
pub fn parse_file(path: &Path) -> KbResult<ParsedFile> {
    let bytes = std::fs::read(path).map_err(|e| KbError::io(path, e))?;
    parse_bytes(path, &bytes, format_of(path)?)
}

/// Parses `bytes` as `format`; `path` is only used to name the source in errors and as base IRI.
pub fn parse_bytes(path: &Path, bytes: &[u8], format: RdfFormat) -> KbResult<ParsedFile> {
    let base = file_iri(path);
    let mut parser = RdfParser::from_format(format);
    if let Some(base) = base {
        parser = parser
            .with_base_iri(base)
            .map_err(|e| KbError::Serialize(format!("bad base iri for {}: {e}", path.display())))?;
    }
    let mut quads = Vec::new();
    for quad in parser.for_slice(bytes) {
        quads.push(quad.map_err(|e| syntax_error(path, e))?);
    }
    // A dataset file (TriG, N-Quads, JSON-LD) that names no graph is read like a triple file.
    if format.supports_datasets() && quads.iter().any(|q| !q.graph_name.is_default_graph()) {
        group_dataset(path, quads)
    } else {
        group_triples(path, quads)
    }
}

/// A `file:` IRI for `path`, used as the base IRI so relative IRIs resolve predictably.
fn file_iri(path: &Path) -> Option<String> {
    let absolute = std::path::absolute(path).ok()?;
    Some(format!("file://{}", absolute.display()))
}

fn syntax_error(path: &Path, error: RdfSyntaxError) -> KbError {
    // Oxigraph counts lines and columns from 0; editors count from 1.
    let (line, column) = error
        .location()
        .map(|l| (l.start.line + 1, l.start.column + 1))
        .unwrap_or((0, 0));
    KbError::Syntax {
        path: path.to_owned(),
        line,
        column,
        message: error.to_string(),
    }
}

/// Subjects typed `akg:FactGraph` among `quads`.
fn declared_graphs<'a>(quads: impl Iterator<Item = &'a Quad>) -> BTreeSet<NamedNode> {
    quads
        .filter(|q| {
            q.predicate == rdf::TYPE && q.object == Term::from(akg::FACT_GRAPH.into_owned())
        })
        .filter_map(|q| match &q.subject {
            NamedOrBlankNode::NamedNode(n) => Some(n.clone()),
            NamedOrBlankNode::BlankNode(_) => None,
        })
        .collect()
}

fn group_triples(path: &Path, quads: Vec<Quad>) -> KbResult<ParsedFile> {
    let declared = declared_graphs(quads.iter());
    let graph = match declared.len() {
        0 => {
            return Err(KbError::NoFactGraph {
                path: path.to_owned(),
            })
        }
        1 => declared
            .into_iter()
            .next()
            .ok_or_else(|| KbError::NoFactGraph {
                path: path.to_owned(),
            })?,
        count => {
            let graphs = declared
                .iter()
                .map(|g| format!("<{}>", g.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(KbError::SeveralFactGraphs {
                path: path.to_owned(),
                count,
                graphs,
            });
        }
    };
    let in_graph = quads
        .into_iter()
        .map(|q| Quad::new(q.subject, q.predicate, q.object, graph.clone()))
        .collect();
    Ok(ParsedFile {
        path: path.to_owned(),
        graphs: BTreeMap::from([(graph, in_graph)]),
    })
}

fn group_dataset(path: &Path, quads: Vec<Quad>) -> KbResult<ParsedFile> {
    let default_count = quads
        .iter()
        .filter(|q| q.graph_name.is_default_graph())
        .count();
    if default_count > 0 {
        return Err(KbError::DefaultGraphTriples {
            path: path.to_owned(),
            count: default_count,
        });
    }
    let declared = declared_graphs(quads.iter());
    let mut graphs: BTreeMap<NamedNode, Vec<Quad>> = BTreeMap::new();
    for quad in quads {
        let GraphName::NamedNode(name) = &quad.graph_name else {
            return Err(KbError::UndeclaredGraph {
                path: path.to_owned(),
                graph: quad.graph_name.to_string(),
            });
        };
        if !declared.contains(name) {
            return Err(KbError::UndeclaredGraph {
                path: path.to_owned(),
                graph: name.as_str().to_owned(),
            });
        }
        graphs.entry(name.clone()).or_default().push(quad);
    }
    Ok(ParsedFile {
        path: path.to_owned(),
        graphs,
    })
}
