//! Retrieval metrics with the definitions of sentence-transformers' `InformationRetrievalEvaluator`
//! (binary relevance), so our numbers compare with the paper's:
//!
//! - HIT@k (`accuracy@k`): 1 when a relevant item is among the first k;
//! - Recall@k: relevant items among the first k / all relevant items of the query;
//! - MRR@k: 1 / rank of the first relevant item within the first k, else 0;
//! - NDCG@k: DCG of the first k (gain 1 / log2(rank + 1)) over the DCG of an ideal ranking of
//!   min(k, #relevant) relevant items;
//! - MAP@k: sum over relevant items within the first k of precision at their rank, divided by
//!   min(k, #relevant).
//!
//! Ties in scores are broken by corpus order ([`rank_by_score`]), so a run is repeatable.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The cut-offs of HIT@k.
pub const HIT_KS: [usize; 4] = [1, 3, 5, 10];

/// The metrics of one query, or their mean over queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    pub hit_at_5: f64,
    pub hit_at_10: f64,
    pub mrr_at_10: f64,
    pub ndcg_at_10: f64,
    pub map_at_100: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
}

impl Scores {
    /// The metric names, in the order of [`Self::values`].
    pub const NAMES: [&'static str; 9] = [
        "HIT@1",
        "HIT@3",
        "HIT@5",
        "HIT@10",
        "MRR@10",
        "NDCG@10",
        "MAP@100",
        "Recall@10",
        "Recall@100",
    ];

    /// The values in the order of [`Self::NAMES`].
    pub fn values(&self) -> [f64; 9] {
        [
            self.hit_at_1,
            self.hit_at_3,
            self.hit_at_5,
            self.hit_at_10,
            self.mrr_at_10,
            self.ndcg_at_10,
            self.map_at_100,
            self.recall_at_10,
            self.recall_at_100,
        ]
    }

    /// The value of the metric called `name` (one of [`Self::NAMES`]).
    pub fn get(&self, name: &str) -> Option<f64> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values()[i])
    }

    /// The mean of `scores`, metric by metric (all zeros for none).
    pub fn mean<'a>(scores: impl IntoIterator<Item = &'a Scores>) -> Scores {
        let mut sum = [0.0; 9];
        let mut n = 0usize;
        for s in scores {
            sum.iter_mut().zip(s.values()).for_each(|(a, v)| *a += v);
            n += 1;
        }
        if n == 0 {
            return Scores::default();
        }
        let m = sum.map(|v| v / n as f64);
        Scores {
            hit_at_1: m[0],
            hit_at_3: m[1],
            hit_at_5: m[2],
            hit_at_10: m[3],
            mrr_at_10: m[4],
            ndcg_at_10: m[5],
            map_at_100: m[6],
            recall_at_10: m[7],
            recall_at_100: m[8],
        }
    }
}

/// The metrics of one query: `ranking` holds item ids best first (at least the first 100, when
/// there are that many), `relevant` the ids of its relevant items. A query without relevant
/// items scores 0 everywhere.
pub fn score_query<S: AsRef<str>>(ranking: &[S], relevant: &HashSet<String>) -> Scores {
    if relevant.is_empty() {
        return Scores::default();
    }
    // hits[i]: whether the item at rank i + 1 is relevant.
    let hits: Vec<bool> = ranking
        .iter()
        .take(100)
        .map(|id| relevant.contains(id.as_ref()))
        .collect();
    let found = |k: usize| hits.iter().take(k).filter(|h| **h).count() as f64;
    let hit = |k: usize| if found(k) > 0.0 { 1.0 } else { 0.0 };
    let n_relevant = relevant.len() as f64;

    let mrr_at_10 = hits
        .iter()
        .take(10)
        .position(|h| *h)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64);

    let gain = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = hits
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, h)| **h)
        .map(|(i, _)| gain(i))
        .sum();
    let idcg: f64 = (0..relevant.len().min(10)).map(gain).sum();

    let mut correct = 0usize;
    let mut precision_sum = 0.0;
    for (i, _) in hits.iter().enumerate().filter(|(_, h)| **h) {
        correct += 1;
        precision_sum += correct as f64 / (i + 1) as f64;
    }
    let map_at_100 = precision_sum / relevant.len().min(100) as f64;

    Scores {
        hit_at_1: hit(1),
        hit_at_3: hit(3),
        hit_at_5: hit(5),
        hit_at_10: hit(10),
        mrr_at_10,
        ndcg_at_10: dcg / idcg,
        map_at_100,
        recall_at_10: found(10) / n_relevant,
        recall_at_100: found(100) / n_relevant,
    }
}

/// Indices of `scores` from best to worst; equal scores keep their index order, so ties are
/// broken by corpus order and a ranking never depends on sort internals.
pub fn rank_by_score(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn single_positive_at_rank_two() {
        let s = score_query(&["x", "a", "y"], &set(&["a"]));
        close(s.hit_at_1, 0.0);
        close(s.hit_at_3, 1.0);
        close(s.mrr_at_10, 0.5);
        // DCG = 1/log2(3); IDCG = 1.
        close(s.ndcg_at_10, 1.0 / 3f64.log2());
        close(s.map_at_100, 0.5);
        close(s.recall_at_10, 1.0);
    }

    #[test]
    fn several_positives_one_not_retrieved() {
        // Relevant a, b, c; ranking finds a at 1 and c at 4; b is never retrieved.
        let ranking = ["a", "x", "y", "c", "z"];
        let s = score_query(&ranking, &set(&["a", "b", "c"]));
        close(s.hit_at_1, 1.0);
        close(s.mrr_at_10, 1.0);
        // AP = (1/1 + 2/4) / min(100, 3) = 0.5
        close(s.map_at_100, 0.5);
        // DCG = 1 + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/log2(4).
        let dcg = 1.0 + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        close(s.ndcg_at_10, dcg / idcg);
        close(s.recall_at_10, 2.0 / 3.0);
        close(s.recall_at_100, 2.0 / 3.0);
    }

    #[test]
    fn positive_beyond_the_cut_offs() {
        let mut ranking: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
        ranking.push("a".into()); // rank 21
        let s = score_query(&ranking, &set(&["a"]));
        close(s.hit_at_10, 0.0);
        close(s.mrr_at_10, 0.0);
        close(s.ndcg_at_10, 0.0);
        close(s.recall_at_10, 0.0);
        close(s.recall_at_100, 1.0);
        close(s.map_at_100, 1.0 / 21.0);
    }

    #[test]
    fn more_positives_than_k_cap_the_ideal() {
        // 12 relevant items, all ranked first: NDCG@10 = 1 and MAP@100 = 1.
        let ids: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
        let relevant: HashSet<String> = ids.iter().cloned().collect();
        let s = score_query(&ids, &relevant);
        close(s.ndcg_at_10, 1.0);
        close(s.map_at_100, 1.0);
        close(s.recall_at_10, 10.0 / 12.0);
    }

    #[test]
    fn ties_are_broken_by_corpus_order() {
        assert_eq!(rank_by_score(&[0.5, 0.9, 0.5, 0.9]), [1, 3, 0, 2]);
        // The relevant item ties with an earlier one and therefore ranks second.
        let corpus = ["x", "a"];
        let ranking: Vec<&str> = rank_by_score(&[0.7, 0.7])
            .into_iter()
            .map(|i| corpus[i])
            .collect();
        close(score_query(&ranking, &set(&["a"])).hit_at_1, 0.0);
    }

    #[test]
    fn no_relevant_items_and_means() {
        assert_eq!(score_query(&["a"], &HashSet::new()), Scores::default());
        let a = score_query(&["a"], &set(&["a"]));
        let b = score_query(&["x"], &set(&["a"]));
        let m = Scores::mean([&a, &b]);
        close(m.hit_at_1, 0.5);
        close(m.get("NDCG@10").unwrap_or_default(), 0.5);
        assert_eq!(Scores::mean([]), Scores::default());
    }
}
