//! Export of the knowledge base. Dataset formats (TriG, N-Quads, JSON-LD) keep the fact graphs
//! and so the provenance of every fact; Turtle writes the union of the asserted facts for tools
//! that only read triples. Neither writes the store's default graph (a copy of the merge of the
//! fact graphs) nor the system graphs (the version log), so an export loads back as it is.

use super::error::{KbError, KbResult};
use super::KnowledgeBase;
use crate::vocab::{is_system_graph, INFERRED_GRAPH, PREFIXES};
use oxigraph::io::{JsonLdProfileSet, RdfFormat, RdfSerializer};
use oxigraph::model::{GraphName, Triple};
use std::collections::BTreeMap;
use std::io::Write;

/// Formats `assetkg export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Turtle: the union of all asserted facts (fact graphs are merged, provenance is not kept).
    Turtle,
    /// TriG: every fact graph with its provenance.
    Trig,
    /// N-Quads: every fact graph, one quad per line.
    Nquads,
    /// JSON-LD with a prefix context: every fact graph with its provenance.
    Jsonld,
}

impl KnowledgeBase {
    /// Writes the KB in `format`; `with_inferred` adds the materialised RDFS entailments.
    pub fn export(
        &self,
        format: ExportFormat,
        with_inferred: bool,
        out: &mut impl Write,
    ) -> KbResult<()> {
        let ser = |e: std::io::Error| KbError::Serialize(e.to_string());
        let rdf_format = match format {
            ExportFormat::Turtle => RdfFormat::Turtle,
            ExportFormat::Trig => RdfFormat::TriG,
            ExportFormat::Nquads => RdfFormat::NQuads,
            ExportFormat::Jsonld => RdfFormat::JsonLd {
                profile: JsonLdProfileSet::empty(),
            },
        };
        let mut serializer = RdfSerializer::from_format(rdf_format);
        if format != ExportFormat::Nquads {
            for (prefix, iri) in PREFIXES {
                serializer = serializer
                    .with_prefix(*prefix, *iri)
                    .map_err(|e| KbError::Serialize(e.to_string()))?;
            }
        }
        let mut writer = serializer.for_writer(out);
        let keep = |g: &GraphName| match g {
            GraphName::NamedNode(n) if n.as_ref() == INFERRED_GRAPH => with_inferred,
            GraphName::NamedNode(n) => !is_system_graph(n.as_ref()),
            _ => false,
        };
        if format == ExportFormat::Turtle {
            // Sorted and deduplicated: a fact stated in two graphs is one triple.
            let mut triples = BTreeMap::new();
            for quad in self.store.quads(None, None, None, None)? {
                if keep(&quad.graph_name) {
                    let t = Triple::from(quad);
                    triples.insert(
                        (
                            t.subject.to_string(),
                            t.predicate.to_string(),
                            t.object.to_string(),
                        ),
                        t,
                    );
                }
            }
            for t in triples.values() {
                writer.serialize_triple(t).map_err(ser)?;
            }
        } else {
            for quad in self.store.quads(None, None, None, None)? {
                if keep(&quad.graph_name) {
                    writer.serialize_quad(&quad).map_err(ser)?;
                }
            }
        }
        writer.finish().map_err(ser)?;
        Ok(())
    }
}
