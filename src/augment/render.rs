//! Query texts in the paper's format:
//!
//! ```text
//! Instruct: Given an asset and a failure mode, retrieve the sensors that can detect the failure
//! Query: Asset: electric motor, Asset Description: …, Fault: bearing wear, Fault Description: …
//! ```
//!
//! Each description is included with probability p_desc; training rephrasings also draw the
//! instruction from the task's paraphrases and entity names from their synonyms. Every random
//! choice comes from a generator seeded by the dataset seed and the query id, so a text is
//! reproducible.

use super::descriptions::Descriptions;
use crate::tasks::TaskQuery;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where descriptions come from.
pub trait Describe {
    /// The description of `iri`, if there is one.
    fn describe(&self, iri: &str) -> Option<&str>;
}

impl Describe for Descriptions {
    fn describe(&self, iri: &str) -> Option<&str> {
        self.get(iri).map(|d| d.text.as_str())
    }
}

impl Describe for BTreeMap<String, String> {
    fn describe(&self, iri: &str) -> Option<&str> {
        self.get(iri).map(String::as_str)
    }
}

/// No descriptions at all.
pub struct NoDescriptions;

impl Describe for NoDescriptions {
    fn describe(&self, _iri: &str) -> Option<&str> {
        None
    }
}

/// How a query is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Probability that an entity's description is included.
    pub p_desc: f64,
    /// Probability that an entity is named by one of its synonyms instead of its label.
    pub p_synonym: f64,
    /// Draw the instruction from the paraphrases (else always the first).
    pub random_instruction: bool,
}

/// The paper's default p_desc.
pub const PAPER_P_DESC: f64 = 0.4;

impl RenderOptions {
    /// Evaluation without augmentation: first instruction, labels, no descriptions.
    pub const PLAIN: Self = Self {
        p_desc: 0.0,
        p_synonym: 0.0,
        random_instruction: false,
    };
    /// Evaluation with augmentation: every description included.
    pub const AUGMENTED: Self = Self {
        p_desc: 1.0,
        p_synonym: 0.0,
        random_instruction: false,
    };
    /// Training rephrasings with the paper's p_desc.
    pub const TRAINING: Self = Self {
        p_desc: PAPER_P_DESC,
        p_synonym: 0.3,
        random_instruction: true,
    };
}

/// A generator for rendering variant `variant` of query `query_id` under `seed`.
pub fn query_rng(seed: u64, query_id: &str, variant: u64) -> ChaCha8Rng {
    let digest = Sha256::digest(query_id.as_bytes());
    let mut id_bits = [0u8; 8];
    id_bits.copy_from_slice(&digest[..8]);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from_le_bytes(id_bits));
    rng.set_stream(variant);
    rng
}

/// The full query text: instruction and query part.
pub fn render(
    query: &TaskQuery,
    descriptions: &dyn Describe,
    options: &RenderOptions,
    rng: &mut impl Rng,
) -> String {
    let instructions = query.task.spec().instructions();
    let instruction = if options.random_instruction && !instructions.is_empty() {
        instructions[rng.random_range(0..instructions.len())]
    } else {
        instructions.first().copied().unwrap_or_default()
    };
    format!(
        "Instruct: {instruction}\nQuery: {}",
        query_part(query, descriptions, options, rng)
    )
}

/// The part after `Query: `: each entity's role and name, and maybe its description.
pub fn query_part(
    query: &TaskQuery,
    descriptions: &dyn Describe,
    options: &RenderOptions,
    rng: &mut impl Rng,
) -> String {
    let mut parts = Vec::with_capacity(query.mentions.len() * 2);
    for mention in &query.mentions {
        // Draw both choices for every mention, whatever their outcome, so that changing one
        // probability does not shift the choices made for the other entities.
        let use_synonym = rng.random_bool(options.p_synonym.clamp(0.0, 1.0));
        let synonym_pick = rng.random_range(0..mention.synonyms.len().max(1));
        let include_description = rng.random_bool(options.p_desc.clamp(0.0, 1.0));
        let name = if use_synonym && !mention.synonyms.is_empty() {
            &mention.synonyms[synonym_pick]
        } else {
            &mention.label
        };
        parts.push(format!("{}: {name}", mention.role));
        if include_description && mention.describe {
            if let Some(description) = descriptions.describe(&mention.iri) {
                parts.push(format!(
                    "{} Description: {}",
                    mention.role,
                    description.trim()
                ));
            }
        }
    }
    parts.join(", ")
}

/// Every way the query part can name the query's entities, without descriptions (label or any
/// synonym for each entity), normalised: what the leakage check compares across splits.
pub fn surface_forms(query: &TaskQuery) -> Vec<String> {
    let mut forms = vec![String::new()];
    for mention in &query.mentions {
        let names: Vec<&String> = std::iter::once(&mention.label)
            .chain(&mention.synonyms)
            .collect();
        forms = forms
            .iter()
            .flat_map(|prefix| {
                names
                    .iter()
                    .map(move |name| format!("{prefix}|{}:{}", mention.role, normalise(name)))
            })
            .collect();
    }
    forms
}

/// Lower case, letters and digits only, single spaces.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Mention, Split, TaskCode};

    fn query() -> TaskQuery {
        let mention = |role: &str, iri: &str, label: &str, synonyms: &[&str]| Mention {
            role: role.into(),
            iri: iri.into(),
            label: label.into(),
            synonyms: synonyms.iter().map(|s| (*s).to_owned()).collect(),
            describe: true,
        };
        TaskQuery {
            id: "FM2S:cls:pump+fm:cavitation".into(),
            task: TaskCode::FM2S,
            split: Split::Train,
            group: "pump".into(),
            mentions: vec![
                mention("Asset", "a:pump", "pump", &["centrifugal pump set"]),
                mention(
                    "Fault",
                    "f:cav",
                    "cavitation",
                    &["vapour bubbles", "NPSH problem"],
                ),
            ],
            positives: vec!["s:vibration".into()],
            hard_negatives: vec![],
        }
    }

    fn descriptions() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "a:pump".to_owned(),
            "A machine that moves liquid.".to_owned(),
        )])
    }

    #[test]
    fn plain_and_augmented_texts_have_the_paper_format() {
        let q = query();
        let mut rng = query_rng(1, &q.id, 0);
        let plain = render(&q, &descriptions(), &RenderOptions::PLAIN, &mut rng);
        assert_eq!(
            plain,
            "Instruct: Given an asset and a failure mode, retrieve the sensors that can detect the failure\n\
             Query: Asset: pump, Fault: cavitation"
        );
        let augmented = render(&q, &descriptions(), &RenderOptions::AUGMENTED, &mut rng);
        assert!(augmented.ends_with("Query: Asset: pump, Asset Description: A machine that moves liquid., Fault: cavitation"));
    }

    #[test]
    fn p_desc_is_the_share_of_included_descriptions() {
        let q = query();
        let options = RenderOptions {
            p_desc: 0.4,
            p_synonym: 0.0,
            random_instruction: false,
        };
        let runs = 2000;
        let with = (0..runs)
            .filter(|v| {
                let mut rng = query_rng(3, &q.id, *v);
                query_part(&q, &descriptions(), &options, &mut rng).contains("Asset Description")
            })
            .count();
        let share = with as f64 / runs as f64;
        assert!((0.36..0.44).contains(&share), "{share}");
    }

    #[test]
    fn training_variants_are_reproducible_and_varied() {
        let q = query();
        let variants = || -> Vec<String> {
            (0..20)
                .map(|v| {
                    render(
                        &q,
                        &descriptions(),
                        &RenderOptions::TRAINING,
                        &mut query_rng(5, &q.id, v),
                    )
                })
                .collect()
        };
        let texts = variants();
        assert_eq!(texts, variants());
        let distinct: std::collections::BTreeSet<&String> = texts.iter().collect();
        assert!(distinct.len() > 10, "{}", distinct.len());
        assert!(texts
            .iter()
            .any(|t| t.contains("vapour bubbles") || t.contains("NPSH problem")));
    }

    #[test]
    fn surface_forms_cover_every_synonym_combination() {
        let forms = surface_forms(&query());
        assert_eq!(forms.len(), 2 * 3);
        assert!(forms.contains(&"|Asset:centrifugal pump set|Fault:npsh problem".to_owned()));
    }
}
