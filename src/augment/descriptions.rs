//! Which description a query gets for an entity. Every entity can have several candidates: its
//! `skos:definition` (written by people; its status is that of the fact graph holding it) and
//! any number of LLM-written `akg:EntityDescription` nodes (each with its own vetting status).
//! This module owns the rule that picks one: vetted before proposed, and at the same status the
//! definition before a generated text; rejected texts are never used.

use crate::kb::{KbResult, KnowledgeBase, QueryOutcome};
use crate::vocab::akg;
use oxigraph::model::Term;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// Where a fact or a description stands in expert review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VettingStatus {
    /// Accepted by a domain expert (or from an expert-curated source). Sorts first: preferred.
    Vetted,
    /// Awaiting review.
    Proposed,
    /// Judged wrong; kept so that it is not proposed again, never used.
    Rejected,
}

impl VettingStatus {
    /// The status named by an `akg:` status IRI.
    pub fn from_iri(iri: &str) -> Option<Self> {
        if iri == akg::VETTED.as_str() {
            Some(Self::Vetted)
        } else if iri == akg::PROPOSED.as_str() {
            Some(Self::Proposed)
        } else if iri == akg::REJECTED.as_str() {
            Some(Self::Rejected)
        } else {
            None
        }
    }

    /// `vetted`, `proposed` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vetted => "vetted",
            Self::Proposed => "proposed",
            Self::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for VettingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who wrote a description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DescriptionSource {
    /// The entity's `skos:definition`, written by people.
    Definition,
    /// An `akg:EntityDescription` written by the language model `model`.
    Generated {
        /// The model's identifier (`akg:modelName`), empty when the KB does not say.
        model: String,
    },
}

/// The description chosen for one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Description {
    /// The text.
    pub text: String,
    /// Its vetting status (never [`VettingStatus::Rejected`]).
    pub status: VettingStatus,
    /// Who wrote it.
    pub source: DescriptionSource,
}

/// One description per entity, read from the KB by [`Descriptions::from_kb`].
#[derive(Debug, Clone, Default)]
pub struct Descriptions {
    chosen: BTreeMap<String, Description>,
    /// Entities with at least one usable (not rejected) generated description.
    generated: BTreeSet<String>,
}

/// A candidate with what the choice is decided on.
struct Candidate {
    description: Description,
    /// Newer generated descriptions win ties; empty for definitions.
    ended: String,
    /// Last tie-breaker: the description node's IRI, or the definition text.
    id: String,
}

impl Candidate {
    /// Smaller is better: status, then definition before generated, then newest, then id.
    fn key(&self) -> (VettingStatus, u8, Reverse<&str>, &str) {
        let source = match self.description.source {
            DescriptionSource::Definition => 0,
            DescriptionSource::Generated { .. } => 1,
        };
        (
            self.description.status,
            source,
            Reverse(self.ended.as_str()),
            self.id.as_str(),
        )
    }
}

/// Definitions of entities, with the status of the fact graph that states them. A graph
/// without a status counts as proposed. Only English (or untagged) texts are used.
const DEFINITIONS: &str = "SELECT DISTINCT ?e ?text ?status WHERE {
  GRAPH ?g { ?e skos:definition ?text }
  FILTER(?g != graph:inferred)
  FILTER(LANG(?text) = \"\" || LANGMATCHES(LANG(?text), \"en\"))
  ?e a/rdfs:subClassOf* akg:Entity .
  OPTIONAL { ?g akg:vettingStatus ?status }
}";

/// Generated descriptions with their own status, model and run end time.
const GENERATED: &str = "SELECT DISTINCT ?d ?e ?text ?status ?model ?ended WHERE {
  ?d a akg:EntityDescription ;
     akg:describes ?e ;
     akg:descriptionText ?text ;
     akg:vettingStatus ?status .
  OPTIONAL { ?d prov:wasGeneratedBy ?run .
             OPTIONAL { ?run prov:endedAtTime ?ended }
             OPTIONAL { ?run prov:wasAssociatedWith/akg:modelName ?model } }
}";

fn rows(kb: &KnowledgeBase, query: &str) -> KbResult<Vec<Vec<Option<Term>>>> {
    Ok(match kb.query(query)? {
        QueryOutcome::Solutions { rows, .. } => rows,
        _ => Vec::new(),
    })
}

fn iri(term: &Option<Term>) -> Option<&str> {
    match term {
        Some(Term::NamedNode(n)) => Some(n.as_str()),
        _ => None,
    }
}

fn literal(term: &Option<Term>) -> Option<&str> {
    match term {
        Some(Term::Literal(l)) => Some(l.value()),
        _ => None,
    }
}

impl Descriptions {
    /// Reads every entity's candidate descriptions from `kb` (two SPARQL queries) and picks one
    /// per entity.
    pub fn from_kb(kb: &KnowledgeBase) -> KbResult<Self> {
        let mut candidates: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        for row in rows(kb, DEFINITIONS)? {
            let (Some(entity), Some(text)) = (iri(&row[0]), literal(&row[1])) else {
                continue;
            };
            let status = match iri(&row[2]) {
                Some(s) => match VettingStatus::from_iri(s) {
                    Some(status) => status,
                    None => continue,
                },
                None => VettingStatus::Proposed,
            };
            candidates
                .entry(entity.to_owned())
                .or_default()
                .push(Candidate {
                    description: Description {
                        text: text.to_owned(),
                        status,
                        source: DescriptionSource::Definition,
                    },
                    ended: String::new(),
                    id: text.to_owned(),
                });
        }
        let mut generated = BTreeSet::new();
        for row in rows(kb, GENERATED)? {
            let (Some(node), Some(entity), Some(text)) =
                (iri(&row[0]), iri(&row[1]), literal(&row[2]))
            else {
                continue;
            };
            let Some(status) = iri(&row[3]).and_then(VettingStatus::from_iri) else {
                continue;
            };
            if status == VettingStatus::Rejected {
                continue;
            }
            generated.insert(entity.to_owned());
            candidates
                .entry(entity.to_owned())
                .or_default()
                .push(Candidate {
                    description: Description {
                        text: text.to_owned(),
                        status,
                        source: DescriptionSource::Generated {
                            model: literal(&row[4]).unwrap_or_default().to_owned(),
                        },
                    },
                    ended: literal(&row[5]).unwrap_or_default().to_owned(),
                    id: node.to_owned(),
                });
        }
        let chosen = candidates
            .into_iter()
            .filter_map(|(entity, mut list)| {
                list.retain(|c| c.description.status != VettingStatus::Rejected);
                list.into_iter()
                    .min_by(|a, b| a.key().cmp(&b.key()))
                    .map(|best| (entity, best.description))
            })
            .collect();
        Ok(Self { chosen, generated })
    }

    /// The description chosen for `iri`, if it has any usable one.
    pub fn get(&self, iri: &str) -> Option<&Description> {
        self.chosen.get(iri)
    }

    /// Number of entities with a description.
    pub fn len(&self) -> usize {
        self.chosen.len()
    }

    /// True when no entity has a description.
    pub fn is_empty(&self) -> bool {
        self.chosen.is_empty()
    }

    /// All chosen descriptions, by entity IRI.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Description)> {
        self.chosen.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when `iri` has a generated description that is not rejected.
    pub fn has_generated(&self, iri: &str) -> bool {
        self.generated.contains(iri)
    }

    /// Those of `iris` without any usable (not rejected) generated description, in the order
    /// given: the entities `describe` still has to write for.
    pub fn missing<I, S>(&self, iris: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        iris.into_iter()
            .filter(|i| !self.generated.contains(i.as_ref()))
            .map(|i| i.as_ref().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(status: VettingStatus, generated: bool, ended: &str, id: &str) -> Candidate {
        Candidate {
            description: Description {
                text: id.to_owned(),
                status,
                source: if generated {
                    DescriptionSource::Generated { model: "m".into() }
                } else {
                    DescriptionSource::Definition
                },
            },
            ended: ended.to_owned(),
            id: id.to_owned(),
        }
    }

    fn best(list: Vec<Candidate>) -> String {
        list.into_iter()
            .min_by(|a, b| a.key().cmp(&b.key()))
            .map(|c| c.id)
            .unwrap_or_default()
    }

    #[test]
    fn vetted_beats_proposed_and_definitions_beat_generated_texts() {
        use VettingStatus::*;
        assert_eq!(
            best(vec![
                candidate(Proposed, false, "", "def"),
                candidate(Vetted, true, "2026", "gen"),
            ]),
            "gen"
        );
        assert_eq!(
            best(vec![
                candidate(Proposed, true, "2026", "gen"),
                candidate(Proposed, false, "", "def"),
            ]),
            "def"
        );
        assert_eq!(
            best(vec![
                candidate(Vetted, true, "2026-01-01T00:00:00Z", "old"),
                candidate(Vetted, true, "2026-02-01T00:00:00Z", "new"),
            ]),
            "new",
            "the newer run wins a tie"
        );
        assert_eq!(
            best(vec![
                candidate(Vetted, true, "t", "b"),
                candidate(Vetted, true, "t", "a"),
            ]),
            "a"
        );
    }

    #[test]
    fn statuses_round_trip_their_iris() {
        for s in [
            VettingStatus::Vetted,
            VettingStatus::Proposed,
            VettingStatus::Rejected,
        ] {
            let iri = format!("{}{}", crate::vocab::AKG, s.as_str());
            assert_eq!(VettingStatus::from_iri(&iri), Some(s));
        }
        assert_eq!(VettingStatus::from_iri("http://example.org/x"), None);
    }
}
