//! Retrieval scores of the model being trained, in memory: validation or test queries against
//! the whole shared corpus, exact cosine ranking, the same metrics as `assetkg eval`.

use super::data::{EvalQuery, TrainingData};
use super::encoder::{embed_all, FrozenCache};
use crate::embed::bert::Bert;
use crate::eval::metrics::{rank_by_score, score_query, Scores};
use crate::eval::report::TaskScores;
use crate::tasks::TaskCode;
use serde::{Deserialize, Serialize};

/// Ranking depth: enough for MAP@100.
const DEPTH: usize = 100;

/// Scores of one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    pub tasks: Vec<TaskScores>,
    /// The unweighted mean over tasks (what reports compare).
    pub mean: Scores,
    /// Model selection score: the mean of HIT@1, MAP@100 and NDCG@10 of each task, averaged
    /// with each task weighted by its number of queries.
    pub selection: f64,
}

/// Scores `queries` with `bert` over the cached texts of `data`.
pub fn score(
    bert: &Bert,
    cache: &FrozenCache,
    data: &TrainingData,
    queries: &[EvalQuery],
) -> candle_core::Result<SplitScores> {
    let corpus_texts: Vec<&str> = data
        .corpus_texts
        .iter()
        .map(|&t| data.texts.get(t))
        .collect();
    let corpus = embed_all(bert, cache, &corpus_texts)?;
    let query_texts: Vec<&str> = queries.iter().map(|q| data.texts.get(q.text)).collect();
    let vectors = embed_all(bert, cache, &query_texts)?;
    let mut tasks = Vec::new();
    let (mut weighted, mut total) = (0.0, 0usize);
    for task in TaskCode::ALL {
        let scores: Vec<Scores> = queries
            .iter()
            .zip(&vectors)
            .filter(|(q, _)| q.task == task)
            .map(|(q, v)| {
                let similarities: Vec<f32> = corpus
                    .iter()
                    .map(|c| c.iter().zip(v).map(|(a, b)| a * b).sum())
                    .collect();
                let ranking: Vec<&str> = rank_by_score(&similarities)
                    .into_iter()
                    .take(DEPTH)
                    .map(|i| data.corpus_ids[i].as_str())
                    .collect();
                score_query(&ranking, &q.relevant)
            })
            .collect();
        if scores.is_empty() {
            continue;
        }
        let mean = Scores::mean(&scores);
        weighted += headline(&mean) * scores.len() as f64;
        total += scores.len();
        tasks.push(TaskScores {
            task: task.to_string(),
            queries: scores.len(),
            scores: mean,
        });
    }
    Ok(SplitScores {
        mean: Scores::mean(tasks.iter().map(|t| &t.scores)),
        tasks,
        selection: if total == 0 {
            0.0
        } else {
            weighted / total as f64
        },
    })
}

/// The mean of the paper's three headline metrics.
pub fn headline(s: &Scores) -> f64 {
    (s.hit_at_1 + s.map_at_100 + s.ndcg_at_10) / 3.0
}
