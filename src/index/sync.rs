//! Incremental sync of the `entities` table with a set of documents.
//!
//! The content hash of each document decides whether its row is still right; only new and
//! changed documents are embedded, since embedding is by far the slowest step. A table whose
//! vectors come from another model (or have another dimension) is rebuilt from scratch, because
//! vectors of two models cannot be searched together.

use super::documents::EntityDoc;
use super::error::{IndexError, IndexResult};
use super::rows::{self, col, Columns, TABLE};
use super::search::sql_string;
use super::EntityIndex;
use crate::embed::Embedder;
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use lancedb::database::CreateTableMode;
use lancedb::index::scalar::FtsIndexBuilder;
use lancedb::index::vector::IvfFlatIndexBuilder;
use lancedb::index::{Index, IndexType};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::DistanceType;
use lancedb::Table;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Texts embedded per call of the embedder.
const EMBED_BATCH: usize = 32;

/// IRIs per `DELETE … WHERE iri IN (…)`, to keep each SQL predicate small.
const DELETE_CHUNK: usize = 256;

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Rows of new entities.
    pub added: usize,
    /// Rows re-embedded because their document (or, in a rebuild, the model) changed.
    pub updated: usize,
    /// Rows of entities no longer in the documents, deleted.
    pub removed: usize,
    /// Rows left as they were.
    pub unchanged: usize,
    /// True when the table held vectors of another model and was rebuilt.
    pub model_rebuild: bool,
}

impl SyncReport {
    /// True when the table was not written.
    pub fn is_noop(&self) -> bool {
        self.added == 0 && self.updated == 0 && self.removed == 0 && !self.model_rebuild
    }
}

/// The key columns of a stored row.
struct Stored {
    content_hash: String,
    model_id: String,
}

impl EntityIndex {
    /// Brings the table in line with `docs`: embeds new and changed documents with `embedder`
    /// (in batches, with a progress bar on stderr when `progress`), deletes rows of entities
    /// that are gone, rebuilds everything when the stored vectors come from another model, and
    /// rebuilds the full-text index after any change.
    pub async fn sync(
        &self,
        docs: &[EntityDoc],
        embedder: &dyn Embedder,
        progress: bool,
    ) -> IndexResult<SyncReport> {
        let result = self.sync_rows(docs, embedder, progress).await;
        // Searches reopen the table, whatever was written.
        self.drop_reader();
        result
    }

    async fn sync_rows(
        &self,
        docs: &[EntityDoc],
        embedder: &dyn Embedder,
        progress: bool,
    ) -> IndexResult<SyncReport> {
        check_unique(docs)?;
        let model = embedder.model_id();
        let dim = embedder.dim();
        let existing = self.table().await?;
        let (stored, stored_dim) = match &existing {
            Some(table) => (
                self.stored_rows(table).await?,
                self.stored_dim(table).await?,
            ),
            None => (BTreeMap::new(), None),
        };
        let model_rebuild = existing.is_some()
            && (stored_dim != Some(dim) || stored.values().any(|s| s.model_id != model));

        let mut report = SyncReport {
            model_rebuild,
            ..SyncReport::default()
        };
        let mut to_embed: Vec<&EntityDoc> = Vec::new();
        for doc in docs {
            match stored.get(&doc.iri) {
                None => report.added += 1,
                Some(row) if model_rebuild || row.content_hash != doc.content_hash => {
                    report.updated += 1
                }
                Some(_) => {
                    report.unchanged += 1;
                    continue;
                }
            }
            to_embed.push(doc);
        }
        let wanted: BTreeSet<&str> = docs.iter().map(|d| d.iri.as_str()).collect();
        let removed: Vec<&String> = stored
            .keys()
            .filter(|iri| !wanted.contains(iri.as_str()))
            .collect();
        report.removed = removed.len();

        let vectors = embed_all(embedder, &to_embed, progress)?;
        let batch = rows::to_batch(&to_embed, &vectors, model, dim)?;

        let table = match existing {
            Some(table) if !model_rebuild => {
                if !removed.is_empty() {
                    for chunk in removed.chunks(DELETE_CHUNK) {
                        let iris: Vec<String> = chunk.iter().map(|i| sql_string(i)).collect();
                        let predicate = format!("{} IN ({})", col::IRI, iris.join(", "));
                        table
                            .delete(predicate.as_str())
                            .await
                            .map_err(|e| self.table_error("deleting rows", e))?;
                    }
                }
                if batch.num_rows() > 0 {
                    // One upsert keyed on the IRI: changed rows are replaced and new rows
                    // inserted in a single commit.
                    let schema = batch.schema();
                    let reader = arrow_array::RecordBatchIterator::new([Ok(batch)], schema);
                    let mut merge = table.merge_insert(&[col::IRI]);
                    merge
                        .when_matched_update_all(None)
                        .when_not_matched_insert_all();
                    merge
                        .execute(Box::new(reader))
                        .await
                        .map_err(|e| self.table_error("writing rows", e))?;
                }
                table
            }
            // First sync, or another model: (re)create the table with every row.
            _ => self
                .db
                .create_table(TABLE, batch)
                .mode(CreateTableMode::Overwrite)
                .execute()
                .await
                .map_err(|e| self.table_error("creating", e))?,
        };

        if !report.is_noop() || !self.has_indices(&table).await? {
            // Rebuilt rather than optimised: with a few thousand short documents a rebuild
            // takes well under a second and keeps the BM25 statistics exact.
            table
                .create_index(&[col::TEXT], Index::FTS(FtsIndexBuilder::default()))
                .replace(true)
                .execute()
                .await
                .map_err(|e| self.table_error("building the full-text index", e))?;
            // An IVF_FLAT index with one partition is still an exact search (it holds the
            // raw vectors and probes its only partition), but Lance keeps index partitions
            // decoded in its cache, where a flat scan decodes the vector column again for every
            // query: vector searches at concurrency 32 went from 146 to 298 per second (debug build).
            table
                .create_index(
                    &[col::VECTOR],
                    Index::IvfFlat(
                        IvfFlatIndexBuilder::default()
                            .distance_type(DistanceType::Cosine)
                            .num_partitions(1),
                    ),
                )
                .replace(true)
                .execute()
                .await
                .map_err(|e| self.table_error("building the vector index", e))?;
        }
        tracing::info!(
            uri = %self.uri,
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            unchanged = report.unchanged,
            model_rebuild = report.model_rebuild,
            "entity index synced"
        );
        Ok(report)
    }

    /// IRI → hash and model of every stored row.
    async fn stored_rows(&self, table: &Table) -> IndexResult<BTreeMap<String, Stored>> {
        let batches: Vec<_> = table
            .query()
            .select(Select::columns(&[
                col::IRI,
                col::CONTENT_HASH,
                col::MODEL_ID,
            ]))
            .execute()
            .await
            .map_err(|e| self.table_error("reading stored rows", e))?
            .try_collect()
            .await
            .map_err(|e| self.table_error("reading stored rows", e))?;
        let mut stored = BTreeMap::new();
        for batch in &batches {
            let columns = Columns::new(batch, &self.uri);
            let iri = columns.strings(col::IRI)?;
            let hash = columns.strings(col::CONTENT_HASH)?;
            let model = columns.strings(col::MODEL_ID)?;
            for i in 0..batch.num_rows() {
                stored.insert(
                    iri.value(i).to_owned(),
                    Stored {
                        content_hash: hash.value(i).to_owned(),
                        model_id: model.value(i).to_owned(),
                    },
                );
            }
        }
        Ok(stored)
    }

    /// The dimension of the stored vector column (`None` when it is missing or not floats).
    async fn stored_dim(&self, table: &Table) -> IndexResult<Option<usize>> {
        let schema = table
            .schema()
            .await
            .map_err(|e| self.table_error("reading the schema", e))?;
        Ok(rows::vector_dim(&schema))
    }

    /// True when both indices exist: the full-text one on the text and the vector one (a
    /// table written before the vector index existed gets it at its next sync).
    async fn has_indices(&self, table: &Table) -> IndexResult<bool> {
        let indices = table
            .list_indices()
            .await
            .map_err(|e| self.table_error("listing indices", e))?;
        let has = |kind: IndexType, column: &str| {
            indices
                .iter()
                .any(|i| i.index_type == kind && i.columns.iter().any(|c| c == column))
        };
        Ok(has(IndexType::FTS, col::TEXT) && has(IndexType::IvfFlat, col::VECTOR))
    }
}

/// Refuses documents that share an IRI: the IRI is the row key.
fn check_unique(docs: &[EntityDoc]) -> IndexResult<()> {
    let mut seen = BTreeSet::new();
    match docs.iter().find(|d| !seen.insert(d.iri.as_str())) {
        Some(dup) => Err(IndexError::Documents(format!(
            "two documents have the iri {}",
            dup.iri
        ))),
        None => Ok(()),
    }
}

/// Embeds the texts of `docs` in batches of [`EMBED_BATCH`].
fn embed_all(
    embedder: &dyn Embedder,
    docs: &[&EntityDoc],
    progress: bool,
) -> IndexResult<Vec<Vec<f32>>> {
    let bar = if progress && !docs.is_empty() {
        let bar = ProgressBar::new(docs.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("embedding {bar:40} {pos}/{len} entities ({eta} left)")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut vectors = Vec::with_capacity(docs.len());
    for chunk in docs.chunks(EMBED_BATCH) {
        let texts: Vec<&str> = chunk.iter().map(|d| d.text.as_str()).collect();
        vectors.extend(embed_checked(embedder, &texts)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(vectors)
}

/// Calls the embedder and checks its contract: one vector per text, each of `dim()` floats.
pub(super) fn embed_checked(embedder: &dyn Embedder, texts: &[&str]) -> IndexResult<Vec<Vec<f32>>> {
    let model = || embedder.model_id().to_owned();
    let vectors = embedder.embed(texts).map_err(|source| IndexError::Embed {
        model: model(),
        source,
    })?;
    if vectors.len() != texts.len() {
        return Err(IndexError::BadEmbedding {
            model: model(),
            message: format!(
                "returned {} vectors for {} texts",
                vectors.len(),
                texts.len()
            ),
        });
    }
    if let Some(v) = vectors.iter().find(|v| v.len() != embedder.dim()) {
        return Err(IndexError::BadEmbedding {
            model: model(),
            message: format!(
                "returned a vector of {} dimensions, but its dim() is {}",
                v.len(),
                embedder.dim()
            ),
        });
    }
    Ok(vectors)
}
