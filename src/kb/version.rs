//! The KB version id: the SHA-256 of the W3C RDFC-1.0 canonical N-Quads of every asserted fact
//! (all fact graphs but the inferred one; never the default graph, which only merges them, nor
//! the system graphs). Two stores with the same facts get the same id, whatever the order of
//! loading or the blank-node labels. Canonicalisation is sophia's (`sophia_c14n`); Oxigraph has
//! no implementation of the standard algorithm.
//!
//! A commit hashes its candidate quads before it writes them ([`version_of`]), so that the id
//! goes into the version log in the same transaction as the change. Measured on the bundled KB
//! (29,947 asserted quads; the dev profile, opt-level 1; 2 cores): 0.15–0.18 s, most of it
//! sophia's parse and canonicalisation; see `history.rs` for the cost of a whole edit.

use super::error::{KbError, KbResult};
use super::KnowledgeBase;
use oxigraph::io::{RdfFormat, RdfSerializer};
use oxigraph::model::Quad;
use sha2::{Digest, Sha256};
use sophia::api::source::QuadSource;
use sophia::inmem::dataset::LightDataset;

impl KnowledgeBase {
    /// The version id of the asserted facts, computed from the store: `sha256:` and 64 hex
    /// digits. [`KnowledgeBase::current_version`] reads it from the version log instead.
    pub fn kb_version(&self) -> KbResult<String> {
        version_of(&self.asserted_quads()?)
    }
}

/// The version id of a set of asserted quads (duplicates count once, order does not matter).
/// The quads must be in the form the store keeps them (see `commit::normalise`), or the id
/// will differ from the one computed from the store after the commit.
pub fn version_of(quads: &[Quad]) -> KbResult<String> {
    let err = |e: &dyn std::fmt::Display| KbError::Serialize(format!("kb version: {e}"));
    let mut writer = RdfSerializer::from_format(RdfFormat::NQuads).for_writer(Vec::new());
    for quad in quads {
        writer.serialize_quad(quad).map_err(|e| err(&e))?;
    }
    let nquads = String::from_utf8(writer.finish().map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    let dataset: LightDataset = sophia::turtle::parser::nq::parse_str(&nquads)
        .collect_quads()
        .map_err(|e| err(&e))?;
    let mut canonical = Vec::new();
    sophia::c14n::rdfc10::normalize(&dataset, &mut canonical).map_err(|e| err(&e))?;
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(&canonical))
    ))
}
