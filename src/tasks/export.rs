//! Writing the datasets to disk:
//!
//! ```text
//! OUT/manifest.json            counts per task and split, seed, KB version, the paper's sizes
//! OUT/corpus.jsonl             {id, kind, text}, one per item of every task
//! OUT/<TASK>/<split>.jsonl     {id, task, split, group, text, mentions, positives, hard_negatives, variants}
//! OUT/beir/corpus.jsonl        BEIR layout: {_id, title, text}
//! OUT/beir/queries.jsonl       {_id, text}
//! OUT/beir/qrels/{train,dev,test}.tsv
//! ```
//!
//! Everything is written into `OUT.partial` first and moved into place at the end, so a failed
//! export never leaves a mix of old and new files.

use super::leakage::check_leakage;
use super::spec::SplitBy;
use super::{Dataset, Split, TaskCode, TaskError, TaskQuery, TaskResult};
use crate::augment::render::{query_rng, render, Describe, RenderOptions};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How the exported texts are written.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Probability that a description is included in a text.
    pub p_desc: f64,
    /// Rephrasings written for every training query.
    pub variants: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            p_desc: crate::augment::render::PAPER_P_DESC,
            variants: 8,
        }
    }
}

/// Counts of one task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskCounts {
    pub task: TaskCode,
    pub summary: String,
    /// `query` or `asset`.
    pub split_by: String,
    /// Queries per split.
    pub queries: BTreeMap<Split, usize>,
    /// All queries.
    pub total_queries: usize,
    /// Distinct relevant items.
    pub items: usize,
    /// (query, relevant item) pairs.
    pub pairs: usize,
    /// (query, expert-judged irrelevant item) pairs.
    pub hard_negatives: usize,
    /// The paper's unique queries and items.
    pub paper_queries: usize,
    pub paper_items: usize,
    /// Whether both counts are within 50 % of the paper's.
    pub within_half_of_paper: bool,
}

/// What an export holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Manifest {
    pub seed: u64,
    pub kb_version: String,
    pub p_desc: f64,
    pub variants_per_train_query: usize,
    pub corpus_size: usize,
    pub corpus_by_kind: BTreeMap<String, usize>,
    /// Assets of each split of the asset-split tasks.
    pub asset_splits: BTreeMap<Split, Vec<String>>,
    pub tasks: Vec<TaskCounts>,
    /// Leaks found (always 0 in a written export: a leak stops the export).
    pub leaks: usize,
}

impl Manifest {
    /// The counts of `dataset`.
    pub fn of(dataset: &Dataset, options: &ExportOptions) -> Self {
        let mut corpus_by_kind = BTreeMap::new();
        for item in &dataset.corpus {
            *corpus_by_kind.entry(item.kind.clone()).or_insert(0) += 1;
        }
        let mut asset_splits: BTreeMap<Split, BTreeSet<String>> = BTreeMap::new();
        for q in dataset
            .queries
            .iter()
            .filter(|q| q.task.spec().split_by == SplitBy::Asset)
        {
            asset_splits
                .entry(q.split)
                .or_default()
                .insert(crate::vocab::compact(&q.group));
        }
        let tasks = TaskCode::ALL
            .into_iter()
            .map(|code| {
                let spec = code.spec();
                let queries: Vec<&TaskQuery> =
                    dataset.queries.iter().filter(|q| q.task == code).collect();
                let items: BTreeSet<&str> = queries
                    .iter()
                    .flat_map(|q| q.positives.iter().map(String::as_str))
                    .collect();
                let (paper_queries, paper_items) = spec.paper_size;
                let within = |ours: usize, paper: usize| {
                    (ours as f64 - paper as f64).abs() <= 0.5 * paper as f64
                };
                TaskCounts {
                    task: code,
                    summary: spec.summary.to_owned(),
                    split_by: match spec.split_by {
                        SplitBy::Query => "query".into(),
                        SplitBy::Asset => "asset".into(),
                    },
                    queries: Split::ALL
                        .into_iter()
                        .map(|s| (s, queries.iter().filter(|q| q.split == s).count()))
                        .collect(),
                    total_queries: queries.len(),
                    items: items.len(),
                    pairs: queries.iter().map(|q| q.positives.len()).sum(),
                    hard_negatives: queries.iter().map(|q| q.hard_negatives.len()).sum(),
                    paper_queries,
                    paper_items,
                    within_half_of_paper: within(queries.len(), paper_queries)
                        && within(items.len(), paper_items),
                }
            })
            .collect();
        Manifest {
            seed: dataset.seed,
            kb_version: dataset.kb_version.clone(),
            p_desc: options.p_desc,
            variants_per_train_query: options.variants,
            corpus_size: dataset.corpus.len(),
            corpus_by_kind,
            asset_splits: asset_splits
                .into_iter()
                .map(|(s, a)| (s, a.into_iter().collect()))
                .collect(),
            tasks,
            leaks: check_leakage(dataset).len(),
        }
    }
}

#[derive(Serialize)]
struct QueryRecord<'a> {
    #[serde(flatten)]
    query: &'a TaskQuery,
    text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    variants: Vec<String>,
}

/// Writes `dataset` to `out` (replacing what was there) and returns its manifest. Refuses to
/// write a dataset whose splits leak.
pub fn export(
    dataset: &Dataset,
    descriptions: &dyn Describe,
    options: &ExportOptions,
    out: &Path,
) -> TaskResult<Manifest> {
    let leaks = check_leakage(dataset);
    if let Some(first) = leaks.first() {
        return Err(TaskError::Leakage(format!(
            "{} leaks, the first: {first}",
            leaks.len()
        )));
    }
    let manifest = Manifest::of(dataset, options);
    let partial = sibling(out, "partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    write_all(dataset, descriptions, options, &manifest, &partial)?;
    let old = sibling(out, "old");
    if out.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        std::fs::rename(out, &old).map_err(|e| io(out, e))?;
    }
    std::fs::rename(&partial, out).map_err(|e| io(out, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    Ok(manifest)
}

fn write_all(
    dataset: &Dataset,
    descriptions: &dyn Describe,
    options: &ExportOptions,
    manifest: &Manifest,
    dir: &Path,
) -> TaskResult<()> {
    let text_options = RenderOptions {
        p_desc: options.p_desc,
        p_synonym: 0.0,
        random_instruction: false,
    };
    let training_options = RenderOptions {
        p_desc: options.p_desc,
        ..RenderOptions::TRAINING
    };
    let mut texts: BTreeMap<&str, String> = BTreeMap::new();
    for code in TaskCode::ALL {
        for split in Split::ALL {
            let records: Vec<QueryRecord> = dataset
                .queries_of(code, split)
                .map(|q| {
                    let text = render(
                        q,
                        descriptions,
                        &text_options,
                        &mut query_rng(dataset.seed, &q.id, 0),
                    );
                    let variants = if split == Split::Train {
                        (1..=options.variants as u64)
                            .map(|v| {
                                render(
                                    q,
                                    descriptions,
                                    &training_options,
                                    &mut query_rng(dataset.seed, &q.id, v),
                                )
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    texts.insert(q.id.as_str(), text.clone());
                    QueryRecord {
                        query: q,
                        text,
                        variants,
                    }
                })
                .collect();
            write_jsonl(
                &dir.join(code.as_str()).join(format!("{split}.jsonl")),
                &records,
            )?;
        }
    }
    write_jsonl(&dir.join("corpus.jsonl"), &dataset.corpus)?;

    #[derive(Serialize)]
    struct BeirDoc<'a> {
        _id: &'a str,
        title: &'a str,
        text: &'a str,
    }
    #[derive(Serialize)]
    struct BeirQuery<'a> {
        _id: &'a str,
        text: &'a str,
    }
    let beir = dir.join("beir");
    let docs: Vec<BeirDoc> = dataset
        .corpus
        .iter()
        .map(|d| BeirDoc {
            _id: &d.id,
            title: "",
            text: &d.text,
        })
        .collect();
    write_jsonl(&beir.join("corpus.jsonl"), &docs)?;
    let queries: Vec<BeirQuery> = texts
        .iter()
        .map(|(id, text)| BeirQuery { _id: id, text })
        .collect();
    write_jsonl(&beir.join("queries.jsonl"), &queries)?;
    for (split, name) in [
        (Split::Train, "train"),
        (Split::Validation, "dev"),
        (Split::Test, "test"),
    ] {
        let mut tsv = String::from("query-id\tcorpus-id\tscore\n");
        for q in dataset.queries.iter().filter(|q| q.split == split) {
            for item in &q.positives {
                tsv.push_str(&format!("{}\t{item}\t1\n", q.id));
            }
        }
        write_file(
            &beir.join("qrels").join(format!("{name}.tsv")),
            tsv.as_bytes(),
        )?;
    }
    let json = serde_json::to_vec_pretty(manifest).map_err(|source| TaskError::Json {
        what: "manifest".into(),
        source,
    })?;
    write_file(&dir.join("manifest.json"), &json)
}

fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> TaskResult<()> {
    let mut bytes = Vec::new();
    for record in records {
        serde_json::to_writer(&mut bytes, record).map_err(|source| TaskError::Json {
            what: path.display().to_string(),
            source,
        })?;
        bytes.push(b'\n');
    }
    write_file(path, &bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> TaskResult<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let mut file = std::fs::File::create(path).map_err(|e| io(path, e))?;
    file.write_all(bytes).map_err(|e| io(path, e))
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(format!(".{suffix}"));
    PathBuf::from(name)
}

fn io(path: &Path, source: std::io::Error) -> TaskError {
    TaskError::Io {
        path: path.to_owned(),
        source,
    }
}
