//! The KB version id: the SHA-256 of the W3C RDFC-1.0 canonical N-Quads of every asserted fact
//! (all fact graphs but the inferred one). Two stores with the same facts get the same id,
//! whatever the order of loading or the blank-node labels. Canonicalisation is sophia's
//! (`sophia_c14n`); Oxigraph has no implementation of the standard algorithm.

use super::error::{KbError, KbResult};
use super::KnowledgeBase;
use oxigraph::io::{RdfFormat, RdfSerializer};
use sha2::{Digest, Sha256};
use sophia::api::source::QuadSource;
use sophia::inmem::dataset::LightDataset;
use std::collections::BTreeSet;

impl KnowledgeBase {
    /// The version id of the asserted facts: `sha256:` and 64 hex digits.
    pub fn kb_version(&self) -> KbResult<String> {
        let err = |e: &dyn std::fmt::Display| KbError::Serialize(format!("kb version: {e}"));
        let quads = self.asserted_quads(&BTreeSet::new())?;
        let mut writer = RdfSerializer::from_format(RdfFormat::NQuads).for_writer(Vec::new());
        for quad in &quads {
            writer.serialize_quad(quad).map_err(|e| err(&e))?;
        }
        let nquads =
            String::from_utf8(writer.finish().map_err(|e| err(&e))?).map_err(|e| err(&e))?;
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
}
