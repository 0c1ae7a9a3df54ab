//! Search requests and hits, the SQL filter that restricts every mode to the requested kinds and
//! asset, and the reciprocal rank fusion of the hybrid mode.

use super::documents::{is_kind, KINDS};
use super::error::{IndexError, IndexResult};
use super::rows::col;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How a query is matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Nearest neighbours of the query embedding (cosine similarity).
    Vector,
    /// Full-text search (BM25) over the document text.
    Lexical,
    /// Reciprocal rank fusion of the vector and lexical rankings.
    #[default]
    Hybrid,
}

/// One search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query text.
    pub text: String,
    /// How to match it.
    #[serde(default)]
    pub mode: SearchMode,
    /// Only entities of these kinds (see [`KINDS`]); all kinds when empty.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only entities belonging to this equipment class (its IRI).
    #[serde(default)]
    pub asset: Option<String>,
    /// Maximum number of hits.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    10
}

impl SearchRequest {
    /// A hybrid search for `text` over all kinds, ten hits.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            mode: SearchMode::default(),
            kinds: Vec::new(),
            asset: None,
            limit: default_limit(),
        }
    }

    /// The same request in another mode.
    pub fn mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same request restricted to `kinds`.
    pub fn kinds<S: Into<String>>(mut self, kinds: impl IntoIterator<Item = S>) -> Self {
        self.kinds = kinds.into_iter().map(Into::into).collect();
        self
    }

    /// The same request restricted to the equipment class `asset` (an IRI).
    pub fn asset(mut self, asset: impl Into<String>) -> Self {
        self.asset = Some(asset.into());
        self
    }

    /// The same request with at most `limit` hits.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Checks the request: non-empty text, known kinds.
    pub fn validate(&self) -> IndexResult<()> {
        if self.text.trim().is_empty() {
            return Err(IndexError::Request("the query text is empty".into()));
        }
        if let Some(kind) = self.kinds.iter().find(|k| !is_kind(k)) {
            return Err(IndexError::Request(format!(
                "unknown kind '{kind}' (expected one of: {})",
                KINDS.join(", ")
            )));
        }
        Ok(())
    }

    /// The SQL filter of the kind and asset restrictions, `None` when there are none.
    ///
    /// Lance evaluates it with DataFusion: `IN` for the kinds and `array_has` for membership
    /// of the asset in the `assets` list column.
    pub fn filter(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if !self.kinds.is_empty() {
            let kinds: Vec<String> = self.kinds.iter().map(|k| sql_string(k)).collect();
            clauses.push(format!("{} IN ({})", col::KIND, kinds.join(", ")));
        }
        if let Some(asset) = &self.asset {
            clauses.push(format!("array_has({}, {})", col::ASSETS, sql_string(asset)));
        }
        (!clauses.is_empty()).then(|| clauses.join(" AND "))
    }
}

/// A SQL string literal: single quotes, inner quotes doubled.
pub fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The entity IRI.
    pub iri: String,
    /// Its kind.
    pub kind: String,
    /// Its preferred label.
    pub label: String,
    /// The indexed text.
    pub text: String,
    /// Higher is better: cosine similarity (vector), BM25 (lexical) or the fused reciprocal
    /// rank score (hybrid); scores of different modes are not comparable.
    pub score: f32,
    /// The equipment classes it belongs to.
    pub assets: Vec<String>,
    /// `vetted` or `proposed`.
    pub vetting_status: String,
}

/// The constant of reciprocal rank fusion: a hit at rank r (from 1) in a list adds
/// 1 / (RRF_K + r). 60 is the value of the original paper (Cormack et al., 2009); it keeps
/// one list's top hit from dominating the other list's.
pub const RRF_K: f32 = 60.0;

/// Fuses ranked lists by reciprocal rank. Equal fused scores go to the hit with the better best
/// rank, then to the earlier list (callers put the vector list first, so meaning leads over word
/// overlap), then by IRI so the order is stable. Each hit keeps the fields of its first
/// occurrence, with the fused score.
pub fn reciprocal_rank_fusion(lists: &[Vec<Hit>], limit: usize) -> Vec<Hit> {
    // Per fused hit: the hit and its best (rank, list) pair.
    let mut fused: Vec<(Hit, (usize, usize))> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (list_index, list) in lists.iter().enumerate() {
        for (rank, hit) in list.iter().enumerate() {
            let contribution = 1.0 / (RRF_K + rank as f32 + 1.0);
            match position.get(&hit.iri) {
                Some(&i) => {
                    fused[i].0.score += contribution;
                    fused[i].1 = fused[i].1.min((rank, list_index));
                }
                None => {
                    position.insert(hit.iri.clone(), fused.len());
                    let first = Hit {
                        score: contribution,
                        ..hit.clone()
                    };
                    fused.push((first, (rank, list_index)));
                }
            }
        }
    }
    fused.sort_by(|(a, a_best), (b, b_best)| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a_best.cmp(b_best))
            .then_with(|| a.iri.cmp(&b.iri))
    });
    fused.truncate(limit);
    fused.into_iter().map(|(hit, _)| hit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(iri: &str) -> Hit {
        Hit {
            iri: iri.into(),
            kind: "sensor".into(),
            label: iri.into(),
            text: iri.into(),
            score: 0.0,
            assets: Vec::new(),
            vetting_status: "proposed".into(),
        }
    }

    #[test]
    fn fusion_rewards_agreement_and_keeps_single_list_hits() {
        let vector = vec![hit("a"), hit("b"), hit("c")];
        let lexical = vec![hit("b"), hit("d")];
        let fused = reciprocal_rank_fusion(&[vector, lexical], 10);
        let order: Vec<&str> = fused.iter().map(|h| h.iri.as_str()).collect();
        assert_eq!(order, ["b", "a", "d", "c"]);
        assert!((fused[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert_eq!(reciprocal_rank_fusion(&[vec![hit("a")]], 0).len(), 0);
    }

    #[test]
    fn fusion_ties_go_to_the_best_rank_then_the_first_list() {
        // z and a tie on score (each first in one list): z leads the first list, so it wins
        // over the alphabetically smaller a; then c (rank 1 in the first list) before b.
        let vector = vec![hit("z"), hit("c")];
        let lexical = vec![hit("a"), hit("b")];
        let fused = reciprocal_rank_fusion(&[vector, lexical], 10);
        let order: Vec<&str> = fused.iter().map(|h| h.iri.as_str()).collect();
        assert_eq!(order, ["z", "a", "c", "b"]);
    }

    #[test]
    fn filters_quote_their_values() {
        let request = SearchRequest::new("x")
            .kinds(["sensor", "failure_mode"])
            .asset("http://e.org/o'brien");
        assert_eq!(
            request.filter().as_deref(),
            Some(
                "kind IN ('sensor', 'failure_mode') AND array_has(assets, 'http://e.org/o''brien')"
            )
        );
        assert_eq!(SearchRequest::new("x").filter(), None);
    }

    #[test]
    fn requests_are_validated() {
        assert!(SearchRequest::new(" ").validate().is_err());
        assert!(SearchRequest::new("x").kinds(["pump"]).validate().is_err());
        assert!(SearchRequest::new("x").kinds(["sensor"]).validate().is_ok());
    }
}
