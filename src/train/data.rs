//! Training examples from the task datasets: every distinct text once (corpus items, rendered
//! training-query variants, validation and test queries), and for each training query its
//! variants, positives and negative pools. Texts are numbered so that the frozen-layer cache and
//! the batches refer to them by index.

use super::recipe::DataRecipe;
use crate::augment::render::{query_rng, render, Describe, RenderOptions};
use crate::tasks::{Dataset, Split, TaskCode};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Distinct texts, numbered in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct TextTable {
    texts: Vec<String>,
    index: HashMap<String, usize>,
}

impl TextTable {
    /// The number of `text`, adding it if new.
    pub fn intern(&mut self, text: String) -> usize {
        if let Some(&i) = self.index.get(&text) {
            return i;
        }
        self.texts.push(text.clone());
        self.index.insert(text, self.texts.len() - 1);
        self.texts.len() - 1
    }

    /// Text number `i`.
    pub fn get(&self, i: usize) -> &str {
        &self.texts[i]
    }

    /// How many distinct texts there are.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// A training query: its rendered variants and what it should and should not retrieve.
#[derive(Debug, Clone)]
pub struct TrainQuery {
    pub task: TaskCode,
    /// Text numbers of its variants.
    pub variants: Vec<usize>,
    /// Corpus positions of its relevant items.
    pub positives: Vec<usize>,
    /// Corpus positions the experts judged not relevant.
    pub hard_negatives: Vec<usize>,
}

/// A validation or test query: one text, scored against the whole corpus.
#[derive(Debug, Clone)]
pub struct EvalQuery {
    pub task: TaskCode,
    pub text: usize,
    /// IRIs of its relevant items.
    pub relevant: HashSet<String>,
}

/// Everything a run trains and validates on.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pub texts: TextTable,
    /// Corpus item IRIs, in corpus order.
    pub corpus_ids: Vec<String>,
    /// Text number of each corpus item.
    pub corpus_texts: Vec<usize>,
    pub train: Vec<TrainQuery>,
    /// Every (training query, positive corpus position) pair.
    pub positive_pairs: Vec<(usize, usize)>,
    /// Corpus positions of every item of a task (the task's own candidates).
    pub task_items: BTreeMap<TaskCode, Vec<usize>>,
    pub validation: Vec<EvalQuery>,
    pub test: Vec<EvalQuery>,
}

impl TrainingData {
    /// Renders the training variants of `dataset`'s training queries with `recipe`, and its
    /// validation and test queries as evaluation renders them (variant 0: with every
    /// description when the recipe trains with descriptions, else plain).
    pub fn build(dataset: &Dataset, descriptions: &dyn Describe, recipe: &DataRecipe) -> Self {
        let mut texts = TextTable::default();
        let positions = dataset.corpus_positions();
        let corpus_texts: Vec<usize> = dataset
            .corpus
            .iter()
            .map(|item| texts.intern(item.text.clone()))
            .collect();
        let to_positions = |iris: &[String]| -> Vec<usize> {
            iris.iter()
                .filter_map(|iri| positions.get(iri.as_str()).copied())
                .collect()
        };
        let mut task_items: BTreeMap<TaskCode, Vec<usize>> = BTreeMap::new();
        for query in &dataset.queries {
            let items = task_items.entry(query.task).or_default();
            items.extend(to_positions(&query.positives));
            items.extend(to_positions(&query.hard_negatives));
        }
        for items in task_items.values_mut() {
            items.sort_unstable();
            items.dedup();
        }

        let training = RenderOptions {
            p_desc: recipe.p_desc,
            p_synonym: recipe.p_synonym,
            random_instruction: true,
        };
        let evaluation = eval_render_options(recipe);
        let mut train = Vec::new();
        let mut positive_pairs = Vec::new();
        let (mut validation, mut test) = (Vec::new(), Vec::new());
        for query in &dataset.queries {
            match query.split {
                Split::Train => {
                    // Variant 0 is the evaluation rendering; training uses 1..=n.
                    let variants = (1..=recipe.variants as u64)
                        .map(|v| {
                            let mut rng = query_rng(dataset.seed, &query.id, v);
                            texts.intern(render(query, descriptions, &training, &mut rng))
                        })
                        .collect();
                    let positives = to_positions(&query.positives);
                    positive_pairs.extend(positives.iter().map(|&p| (train.len(), p)));
                    train.push(TrainQuery {
                        task: query.task,
                        variants,
                        positives,
                        hard_negatives: to_positions(&query.hard_negatives),
                    });
                }
                split => {
                    let mut rng = query_rng(dataset.seed, &query.id, 0);
                    let text = texts.intern(render(query, descriptions, &evaluation, &mut rng));
                    let eval_query = EvalQuery {
                        task: query.task,
                        text,
                        relevant: query.positives.iter().cloned().collect(),
                    };
                    if split == Split::Validation {
                        validation.push(eval_query);
                    } else {
                        test.push(eval_query);
                    }
                }
            }
        }
        Self {
            texts,
            corpus_ids: dataset.corpus.iter().map(|i| i.id.clone()).collect(),
            corpus_texts,
            train,
            positive_pairs,
            task_items,
            validation,
            test,
        }
    }
}

/// How validation and test queries are written for a model trained with `recipe`: with every
/// description if it trained with descriptions, else without.
pub fn eval_render_options(recipe: &DataRecipe) -> RenderOptions {
    if recipe.p_desc > 0.0 {
        RenderOptions::AUGMENTED
    } else {
        RenderOptions::PLAIN
    }
}
