//! Evaluation runs: every query of a split is answered against the one shared corpus of all
//! tasks (harder than a per-task corpus, as in the paper), and scored with [`score_query`].
//!
//! The corpus lives in a LanceDB table of its own (the same [`EntityIndex`] code as the entity
//! search), so BM25 is the lexical index's full-text search and the embedding systems are its
//! exact cosine search; a model's corpus vectors are reused across runs until the model or a
//! corpus text changes.

use super::metrics::{score_query, Scores};
use super::report::{SystemResult, TaskScores};
use crate::augment::render::{query_part, query_rng, render, Describe, RenderOptions};
use crate::embed::Embedder;
use crate::index::{EntityDoc, EntityIndex, IndexResult, SearchMode, SearchRequest};
use crate::tasks::{Dataset, Split, TaskCode, TaskQuery};
use indicatif::ProgressBar;
use std::collections::HashSet;

/// Hits per query: enough for MAP@100 and Recall@100.
const DEPTH: usize = 100;

/// How the queries of a system are answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retriever {
    /// BM25 over the corpus texts, queried with the query part (entity names, and descriptions
    /// as `options` says) without the instruction, whose words would match every item.
    Bm25 { options: RenderOptions },
    /// Cosine similarity of embeddings; the query is the full text with its instruction.
    Embedding { options: RenderOptions },
}

/// The corpus items as index documents (kind and text; no asset filter is needed).
pub fn corpus_documents(dataset: &Dataset) -> Vec<EntityDoc> {
    dataset
        .corpus
        .iter()
        .map(|item| {
            EntityDoc::new(
                item.id.clone(),
                item.kind.clone(),
                item.text.clone(),
                item.text.clone(),
                Vec::new(),
                crate::index::documents::VETTED.to_owned(),
            )
        })
        .collect()
}

/// The corpus index of one model at `uri`, synced with `dataset`'s corpus.
pub async fn corpus_index(
    uri: &str,
    dataset: &Dataset,
    embedder: &dyn Embedder,
    progress: bool,
) -> IndexResult<EntityIndex> {
    let index = EntityIndex::open(uri).await?;
    let report = index
        .sync(&corpus_documents(dataset), embedder, progress)
        .await?;
    tracing::info!(
        uri,
        added = report.added,
        updated = report.updated,
        unchanged = report.unchanged,
        "corpus index synced"
    );
    Ok(index)
}

/// Scores one system on `split` of `tasks`. `embedder` must be the model `index` was synced
/// with (BM25 does not embed, but the index checks the model of vector queries only).
#[allow(clippy::too_many_arguments)]
pub async fn evaluate(
    name: &str,
    model: &str,
    retriever: Retriever,
    dataset: &Dataset,
    tasks: &[TaskCode],
    split: Split,
    index: &EntityIndex,
    embedder: &dyn Embedder,
    descriptions: &dyn Describe,
    progress: bool,
) -> IndexResult<SystemResult> {
    let queries: Vec<&TaskQuery> = tasks
        .iter()
        .flat_map(|t| dataset.queries_of(*t, split))
        .collect();
    let bar = progress_bar(progress, queries.len() as u64, name);
    let mut per_task = Vec::new();
    for task in tasks {
        let mut scores = Vec::new();
        for query in queries.iter().filter(|q| q.task == *task) {
            let ranking = rank(
                retriever,
                dataset.seed,
                query,
                index,
                embedder,
                descriptions,
            )
            .await?;
            let relevant: HashSet<String> = query.positives.iter().cloned().collect();
            scores.push(score_query(&ranking, &relevant));
            bar.inc(1);
        }
        per_task.push(TaskScores {
            task: task.to_string(),
            queries: scores.len(),
            scores: Scores::mean(&scores),
        });
    }
    bar.finish_and_clear();
    Ok(SystemResult::new(
        name.to_owned(),
        model.to_owned(),
        per_task,
    ))
}

/// The corpus ids answering `query`, best first.
async fn rank(
    retriever: Retriever,
    seed: u64,
    query: &TaskQuery,
    index: &EntityIndex,
    embedder: &dyn Embedder,
    descriptions: &dyn Describe,
) -> IndexResult<Vec<String>> {
    // Variant 0 of the query: the same text for every system that renders it the same way.
    let mut rng = query_rng(seed, &query.id, 0);
    let request = match retriever {
        Retriever::Bm25 { options } => {
            SearchRequest::new(query_part(query, descriptions, &options, &mut rng))
                .mode(SearchMode::Lexical)
        }
        Retriever::Embedding { options } => {
            SearchRequest::new(render(query, descriptions, &options, &mut rng))
                .mode(SearchMode::Vector)
        }
    };
    let hits = index.search(&request.limit(DEPTH), embedder).await?;
    Ok(hits.into_iter().map(|h| h.iri).collect())
}

fn progress_bar(show: bool, len: u64, name: &str) -> ProgressBar {
    crate::progress::bar(
        show,
        len,
        "{msg:28} {bar:40} {pos}/{len} queries ({eta} left)",
        name,
    )
}
