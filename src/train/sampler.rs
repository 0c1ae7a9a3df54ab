//! Batches. A contrastive batch holds a set share of positive pairs and, for the same queries,
//! negatives drawn from the expert's "not relevant" judgments, the task's other items or the
//! whole corpus. An MNRL batch holds (query, positive) pairs with no query and no item twice,
//! since every other item of the batch is taken as a negative of each query.
//!
//! A batch is a pure function of (seed, epoch, step), so a resumed run sees exactly the batches
//! an uninterrupted one would have.

use super::data::TrainingData;
use super::recipe::{LossKind, Recipe};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// One (query text, corpus item) pair with its label (1 relevant, 0 not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// Index of the training query.
    pub query: usize,
    /// Text number of the query variant used.
    pub text: usize,
    /// Corpus position of the item.
    pub item: usize,
    pub label: f32,
}

/// Draws the batches of a run.
#[derive(Debug)]
pub struct Sampler<'a> {
    data: &'a TrainingData,
    recipe: &'a Recipe,
    /// The (query, positive) stream and MNRL partition of each epoch.
    epochs: Vec<Epoch>,
}

#[derive(Debug)]
struct Epoch {
    loss: LossKind,
    /// The positive pairs, shuffled for this epoch.
    stream: Vec<(usize, usize)>,
    /// MNRL epochs: the batches, as index ranges into `stream` after regrouping.
    mnrl_batches: Vec<Vec<(usize, usize)>>,
}

impl<'a> Sampler<'a> {
    pub fn new(data: &'a TrainingData, recipe: &'a Recipe) -> Self {
        let epochs = (0..recipe.schedule.epochs)
            .map(|e| {
                let mut stream = data.positive_pairs.clone();
                stream.shuffle(&mut rng_for(recipe.seed, e as u64, u64::MAX));
                let loss = recipe.loss_of_epoch(e);
                let mnrl_batches = if loss == LossKind::Mnrl {
                    distinct_batches(&stream, recipe.schedule.batch_size)
                } else {
                    Vec::new()
                };
                Epoch {
                    loss,
                    stream,
                    mnrl_batches,
                }
            })
            .collect();
        Self {
            data,
            recipe,
            epochs,
        }
    }

    /// The loss of `epoch`.
    pub fn loss(&self, epoch: usize) -> LossKind {
        self.epochs[epoch].loss
    }

    /// Steps of `epoch`: one pass over the positives for MNRL; for contrastive as many pairs as
    /// twice the positives, whatever the positive ratio, so ratios compare at equal compute.
    pub fn steps_in_epoch(&self, epoch: usize) -> usize {
        let e = &self.epochs[epoch];
        match e.loss {
            LossKind::Mnrl => e.mnrl_batches.len(),
            _ => (2 * e.stream.len()).div_ceil(self.recipe.schedule.batch_size),
        }
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> usize {
        (0..self.epochs.len()).map(|e| self.steps_in_epoch(e)).sum()
    }

    /// (epoch, step within it) of global step `step`.
    pub fn locate(&self, mut step: usize) -> Option<(usize, usize)> {
        for e in 0..self.epochs.len() {
            let n = self.steps_in_epoch(e);
            if step < n {
                return Some((e, step));
            }
            step -= n;
        }
        None
    }

    /// Batch `step` of `epoch`.
    pub fn batch(&self, epoch: usize, step: usize) -> Vec<Pair> {
        let e = &self.epochs[epoch];
        let mut rng = rng_for(self.recipe.seed, epoch as u64, step as u64);
        if e.stream.is_empty() {
            return Vec::new();
        }
        match e.loss {
            LossKind::Mnrl => e.mnrl_batches[step]
                .iter()
                .map(|&(q, item)| self.pair(q, item, 1.0, &mut rng))
                .collect(),
            _ => self.contrastive_batch(&e.stream, step, &mut rng),
        }
    }

    fn contrastive_batch(
        &self,
        stream: &[(usize, usize)],
        step: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Pair> {
        let size = self.recipe.schedule.batch_size;
        let n_pos = (self.recipe.schedule.positive_ratio * size as f64).round() as usize;
        let n_neg = size - n_pos;
        let mut pairs = Vec::with_capacity(size);
        let (mut positives, mut negatives) = (0, 0);
        // Positives and negatives alternate (positives spread evenly over the batch), the
        // negatives going to the queries of the positive stream, so every query gets negatives
        // in proportion to its positives.
        for i in 0..size {
            let take_positive = (i * n_pos / size) != ((i + 1) * n_pos / size);
            if take_positive {
                let (q, item) = stream[(step * n_pos + positives) % stream.len()];
                positives += 1;
                pairs.push(self.pair(q, item, 1.0, rng));
            } else {
                let (q, _) = stream[(step * n_neg + negatives) % stream.len()];
                negatives += 1;
                let item = self.negative(q, rng);
                pairs.push(self.pair(q, item, 0.0, rng));
            }
        }
        pairs
    }

    fn pair(&self, query: usize, item: usize, label: f32, rng: &mut ChaCha8Rng) -> Pair {
        let variants = &self.data.train[query].variants;
        Pair {
            query,
            text: variants[rng.random_range(0..variants.len())],
            item,
            label,
        }
    }

    /// A corpus position that is not a positive of `query`.
    fn negative(&self, query: usize, rng: &mut ChaCha8Rng) -> usize {
        let q = &self.data.train[query];
        let d = &self.recipe.data;
        if !q.hard_negatives.is_empty() && rng.random_bool(d.hard_negative_share) {
            return q.hard_negatives[rng.random_range(0..q.hard_negatives.len())];
        }
        let corpus = self.data.corpus_ids.len();
        let task_items = self
            .data
            .task_items
            .get(&q.task)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let from_corpus = rng.random_bool(d.corpus_negative_share);
        for _ in 0..64 {
            let candidate = if from_corpus || task_items.is_empty() {
                rng.random_range(0..corpus)
            } else {
                task_items[rng.random_range(0..task_items.len())]
            };
            if !q.positives.contains(&candidate) {
                return candidate;
            }
        }
        // A query relevant to nearly all its task's items: any non-positive of the corpus.
        (0..corpus)
            .find(|c| !q.positives.contains(c))
            .unwrap_or_default()
    }
}

/// Groups `stream` into batches of up to `size` pairs with no query and no item twice in a
/// batch, in stream order where possible (a pair that clashes waits for the next batch).
fn distinct_batches(stream: &[(usize, usize)], size: usize) -> Vec<Vec<(usize, usize)>> {
    let mut waiting: Vec<(usize, usize)> = stream.to_vec();
    let mut batches = Vec::new();
    while !waiting.is_empty() {
        let (mut queries, mut items) = (HashSet::new(), HashSet::new());
        let mut batch = Vec::with_capacity(size);
        let mut rest = Vec::with_capacity(waiting.len());
        for pair in waiting {
            if batch.len() < size && !queries.contains(&pair.0) && !items.contains(&pair.1) {
                queries.insert(pair.0);
                items.insert(pair.1);
                batch.push(pair);
            } else {
                rest.push(pair);
            }
        }
        // A batch of one has no in-batch negative: it teaches nothing, leave it out.
        if batch.len() > 1 {
            batches.push(batch);
        }
        waiting = rest;
    }
    batches
}

/// The generator of (seed, epoch, step).
fn rng_for(seed: u64, epoch: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(step);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::TaskCode;
    use crate::train::data::{TextTable, TrainQuery};
    use std::collections::BTreeMap;
    use std::path::Path;

    fn data() -> TrainingData {
        let mut texts = TextTable::default();
        let corpus_texts = (0..20).map(|i| texts.intern(format!("item {i}"))).collect();
        let train: Vec<TrainQuery> = (0..6)
            .map(|q| TrainQuery {
                task: TaskCode::FM2S,
                variants: vec![
                    texts.intern(format!("q{q} a")),
                    texts.intern(format!("q{q} b")),
                ],
                positives: vec![q, q + 6],
                hard_negatives: vec![19],
            })
            .collect();
        let positive_pairs = train
            .iter()
            .enumerate()
            .flat_map(|(i, q)| q.positives.iter().map(move |&p| (i, p)))
            .collect();
        TrainingData {
            texts,
            corpus_ids: (0..20).map(|i| format!("i{i}")).collect(),
            corpus_texts,
            train,
            positive_pairs,
            task_items: BTreeMap::from([(TaskCode::FM2S, (0..20).collect())]),
            validation: Vec::new(),
            test: Vec::new(),
        }
    }

    fn recipe(extra: &str) -> Recipe {
        Recipe::parse(&format!("out = \"m\"\n{extra}"), Path::new("r.toml")).unwrap()
    }

    #[test]
    fn contrastive_batches_keep_the_positive_ratio() {
        let data = data();
        for (ratio, expected) in [(0.0, 0), (0.25, 2), (0.5, 4), (1.0, 8)] {
            let r = recipe(&format!(
                "[schedule]\nbatch_size = 8\npositive_ratio = {ratio}\n"
            ));
            let sampler = Sampler::new(&data, &r);
            assert_eq!(sampler.steps_in_epoch(0), 3, "2 × 12 positives / 8");
            for step in 0..3 {
                let batch = sampler.batch(0, step);
                assert_eq!(batch.len(), 8);
                let positives = batch.iter().filter(|p| p.label == 1.0).count();
                assert_eq!(positives, expected, "ratio {ratio}");
                for p in &batch {
                    let q = &data.train[p.query];
                    assert_eq!(q.positives.contains(&p.item), p.label == 1.0);
                    assert!(q.variants.contains(&p.text));
                }
            }
        }
    }

    #[test]
    fn half_ratio_sees_every_positive_once_per_epoch() {
        let data = data();
        let r = recipe("[schedule]\nbatch_size = 8\n");
        let sampler = Sampler::new(&data, &r);
        let mut seen: Vec<(usize, usize)> = (0..3)
            .flat_map(|s| sampler.batch(0, s))
            .filter(|p| p.label == 1.0)
            .map(|p| (p.query, p.item))
            .collect();
        seen.sort_unstable();
        let mut all = data.positive_pairs.clone();
        all.sort_unstable();
        assert_eq!(seen, all);
    }

    #[test]
    fn mnrl_batches_have_distinct_queries_and_items_and_cover_the_positives_but_a_lone_last() {
        let data = data();
        let r = recipe("[schedule]\nbatch_size = 4\nloss = \"mnrl\"\n");
        let sampler = Sampler::new(&data, &r);
        let mut covered = 0;
        for step in 0..sampler.steps_in_epoch(0) {
            let batch = sampler.batch(0, step);
            let queries: HashSet<usize> = batch.iter().map(|p| p.query).collect();
            let items: HashSet<usize> = batch.iter().map(|p| p.item).collect();
            assert_eq!(queries.len(), batch.len());
            assert_eq!(items.len(), batch.len());
            covered += batch.len();
        }
        // Only a last lone pair (no in-batch negative to learn from) is left out.
        assert!(covered + 1 >= data.positive_pairs.len(), "{covered}");
    }

    #[test]
    fn batches_are_a_function_of_seed_epoch_and_step() {
        let data = data();
        let r = recipe("[schedule]\nbatch_size = 8\n");
        let (a, b) = (Sampler::new(&data, &r), Sampler::new(&data, &r));
        assert_eq!(a.batch(1, 2), b.batch(1, 2));
        assert_ne!(a.batch(0, 0), a.batch(1, 0));
        assert_eq!(a.locate(4), Some((1, 1)));
        assert_eq!(a.locate(a.total_steps()), None);
    }
}
