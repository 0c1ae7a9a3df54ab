//! The nine task datasets of the paper, built from the KB: for every task, queries (the
//! entities a question is about) with their relevant items, one shared corpus of all items,
//! deterministic splits, and the leakage check that keeps test queries out of training.
//!
//! - [`spec`]: the task definitions (SPARQL in `queries/*.rq`, instruction paraphrases in
//!   `instructions/*.txt`, roles, split policy, the paper's sizes);
//! - [`build`]: runs the queries and assembles queries, items and the corpus;
//! - [`split`]: train/validation/test assignment from a seed;
//! - [`leakage`]: proves that no test or validation query, nor any rephrasing of it, is trained on;
//! - [`export`]: JSONL per task and split, the corpus, a manifest, and the BEIR layout.
//!
//! Query texts (instruction + entities + descriptions) are written by [`crate::augment::render`].

pub mod build;
pub mod export;
pub mod leakage;
pub mod spec;
pub mod split;

pub use build::{build, load_entities, Entity};
pub use export::{export, Manifest};
pub use leakage::{check_leakage, Leak};
pub use spec::{Role, SplitBy, TaskCode, TaskSpec};
pub use split::Split;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;

/// The seed of the bundled datasets (any seed gives a valid split; this one is the default).
pub const DEFAULT_SEED: u64 = 42;

/// An error while building or writing the task datasets.
#[derive(Debug, Error)]
pub enum TaskError {
    /// The KB could not be queried.
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
    /// A row of a task query is not what the task expects.
    #[error("task {task}: {message}")]
    BadRow { task: TaskCode, message: String },
    /// An entity used by a task has no label in the KB.
    #[error("task {task}: entity {iri} has no skos:prefLabel (or is not of a known class)")]
    UnknownEntity { task: TaskCode, iri: String },
    /// The splits leak test or validation queries into training.
    #[error("the splits leak: {0}")]
    Leakage(String),
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serialising an output record failed.
    #[error("serialising {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Result alias of the tasks module.
pub type TaskResult<T> = Result<T, TaskError>;

/// One entity a query is about, as the query text names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The role name in the text (`Asset`, `Fault`, …).
    pub role: String,
    /// The entity IRI.
    pub iri: String,
    /// Its name in the text: the preferred label (with the code for a failure-mode class).
    pub label: String,
    /// Other names engineers use, for rephrased training queries.
    pub synonyms: Vec<String>,
    /// Whether augmentation may add the entity's description.
    pub describe: bool,
}

/// One query of a task with its relevant items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Stable id: task code and the compact IRIs of the mentions (`FM2S:cls:pump+fm:cavitation`).
    pub id: String,
    /// The task.
    pub task: TaskCode,
    /// Train, validation or test.
    pub split: Split,
    /// The unit the split was drawn over: the asset IRI for asset-split tasks, else the id.
    pub group: String,
    /// The entities the query is about, in text order.
    pub mentions: Vec<Mention>,
    /// IRIs of the relevant corpus items, sorted.
    pub positives: Vec<String>,
    /// IRIs of items the experts judged not relevant to this query (FM2S and S2FM), sorted.
    pub hard_negatives: Vec<String>,
}

/// One retrievable item of the shared corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusItem {
    /// The entity IRI.
    pub id: String,
    /// Its kind (one of [`crate::index::KINDS`]).
    pub kind: String,
    /// Its text with the kind prefix (`Sensor: vibration`).
    pub text: String,
}

/// All nine tasks over one corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The seed the splits were drawn with.
    pub seed: u64,
    /// The KB version the dataset was built from.
    pub kb_version: String,
    /// Every item of every task, sorted by IRI.
    pub corpus: Vec<CorpusItem>,
    /// Every query of every task, by task then id.
    pub queries: Vec<TaskQuery>,
}

impl Dataset {
    /// The queries of `task` in `split`.
    pub fn queries_of(&self, task: TaskCode, split: Split) -> impl Iterator<Item = &TaskQuery> {
        self.queries
            .iter()
            .filter(move |q| q.task == task && q.split == split)
    }

    /// Corpus position by item IRI.
    pub fn corpus_positions(&self) -> HashMap<&str, usize> {
        self.corpus
            .iter()
            .enumerate()
            .map(|(i, item)| (item.id.as_str(), i))
            .collect()
    }
}
