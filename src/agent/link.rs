//! Entity linking by name: finds the KB entities a text names (preferred labels and synonyms,
//! whole words, case-insensitive), longest name first, so that "impeller wear" is read as the
//! failure mode and not as the component "impeller". Built once per KB version.

use crate::index::documents::entity_documents;
use crate::kb::{KbResult, KnowledgeBase};
use crate::tasks::load_entities;
use serde::Serialize;
use std::collections::HashMap;

/// An entity a text names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mention {
    /// The entity IRI.
    pub iri: String,
    /// Its kind (one of [`crate::index::KINDS`]).
    pub kind: String,
    /// Its preferred label.
    pub label: String,
    /// The equipment classes it belongs to.
    pub assets: Vec<String>,
    /// Where the name starts in the normalised text (for ordering).
    pub position: usize,
}

struct Name {
    normalised: String,
    iri: String,
}

struct EntityInfo {
    kind: String,
    label: String,
    assets: Vec<String>,
}

/// The names of every entity, ready to be found in texts.
pub struct Linker {
    names: Vec<Name>,
    entities: HashMap<String, EntityInfo>,
}

impl std::fmt::Debug for Linker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker")
            .field("names", &self.names.len())
            .finish_non_exhaustive()
    }
}

/// Lower case, every run of non-alphanumeric characters one space, padded with spaces.
pub fn normalise(text: &str) -> String {
    let mut out = String::from(" ");
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

impl Linker {
    /// Reads the names of every labelled entity of `kb`.
    pub fn build(kb: &KnowledgeBase) -> KbResult<Self> {
        let assets: HashMap<String, Vec<String>> = entity_documents(kb)?
            .into_iter()
            .map(|d| (d.iri, d.assets))
            .collect();
        let entities = load_entities(kb).map_err(|e| match e {
            crate::tasks::TaskError::Kb(e) => e,
            other => crate::kb::KbError::QueryEvaluation(other.to_string()),
        })?;
        let mut names = Vec::new();
        let mut infos = HashMap::new();
        for entity in entities.into_values() {
            let mut forms = vec![entity.label.clone()];
            forms.extend(entity.synonyms.iter().cloned());
            forms.extend(entity.code.iter().cloned());
            for form in forms {
                let normalised = normalise(&form);
                // One- and two-letter names (codes like "AIR" are three) match too much.
                if normalised.trim().len() >= 3 {
                    names.push(Name {
                        normalised,
                        iri: entity.iri.clone(),
                    });
                }
            }
            infos.insert(
                entity.iri.clone(),
                EntityInfo {
                    kind: entity.kind,
                    label: entity.label,
                    assets: assets.get(&entity.iri).cloned().unwrap_or_default(),
                },
            );
        }
        // Longest first: a longer name wins the words it covers; equal names side by side, so
        // that every entity of a shared name is found.
        names.sort_by(|a, b| {
            b.normalised
                .len()
                .cmp(&a.normalised.len())
                .then_with(|| a.normalised.cmp(&b.normalised))
                .then_with(|| a.iri.cmp(&b.iri))
        });
        Ok(Self {
            names,
            entities: infos,
        })
    }

    /// The entity `iri` as a mention (position 0), when it is known.
    pub fn entity(&self, iri: &str) -> Option<Mention> {
        self.entities.get(iri).map(|info| Mention {
            iri: iri.to_owned(),
            kind: info.kind.clone(),
            label: info.label.clone(),
            assets: info.assets.clone(),
            position: 0,
        })
    }

    /// The entities `text` names, in text order. Where names overlap the longest wins; a name
    /// shared by several entities yields all of them (the caller picks by kind or asset).
    pub fn mentions(&self, text: &str) -> Vec<Mention> {
        let text = normalise(text);
        let mut covered = vec![false; text.len()];
        let mut found: Vec<Mention> = Vec::new();
        let mut claimed: Option<(usize, usize)> = None;
        for name in &self.names {
            // The name without its padding; a match must sit between spaces.
            let core = name.normalised.trim();
            for (start, _) in text.match_indices(core) {
                let end = start + core.len();
                if !text[..start].ends_with(' ') || !text[end..].starts_with(' ') {
                    continue;
                }
                let same_span = claimed == Some((start, end));
                if !same_span && covered[start..end].iter().any(|&c| c) {
                    continue;
                }
                if found.iter().any(|m| m.iri == name.iri) {
                    continue;
                }
                if let Some(mut mention) = self.entity(&name.iri) {
                    mention.position = start;
                    found.push(mention);
                    covered[start..end].iter_mut().for_each(|c| *c = true);
                    claimed = Some((start, end));
                }
            }
        }
        found.sort_by_key(|m| m.position);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn normalising_keeps_words_apart_and_pads() {
        assert_eq!(normalise("Impeller-wear, (AIR)!"), " impeller wear air ");
        assert_eq!(normalise(""), " ");
    }
}
