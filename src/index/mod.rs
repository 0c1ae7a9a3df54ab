//! The entity index: one LanceDB table, `entities`, with a row per KB entity (equipment
//! taxonomy, components, failures, sensors), its embedding and a full-text index of its text,
//! searched by vector, lexical (BM25) or hybrid (reciprocal rank fusion) queries that can be
//! restricted to kinds of entity and to one asset.
//!
//! - [`documents`]: what a row says about an entity, read from the KB;
//! - [`sync`](EntityIndex::sync): brings the table in line with the documents, embedding only
//!   what changed;
//! - [`search`](EntityIndex::search): the three modes, with filters applied in each; a small
//!   table is searched in an in-memory [`view`] of its current version, a large one by LanceDB.
//!
//! The index is opened by URI: a local directory, or an object store (`s3://…`, shared by
//! several API replicas), so the URI stays a string throughout.

mod bm25;
pub mod documents;
mod error;
mod rows;
mod search;
mod sync;
mod view;

pub use documents::{
    class_of_kind, entity_documents, kind_of_class, resolve_asset, EntityDoc, KINDS,
};
pub use error::{IndexError, IndexResult};
pub use rows::TABLE;
pub use search::{reciprocal_rank_fusion, Hit, SearchMode, SearchRequest, RRF_K};
pub use sync::SyncReport;
pub use view::DEFAULT_MAX_ROWS as DEFAULT_MEMORY_VIEW_MAX_ROWS;

use crate::embed::Embedder;
use futures::TryStreamExt;
use lancedb::index::scalar::FullTextSearchQuery;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::{Connection, DistanceType, Table};
use rows::{col, Columns, HIT_COLUMNS};
use std::sync::Arc;
use view::MemoryView;

/// The entity table of one LanceDB database.
pub struct EntityIndex {
    uri: String,
    db: Connection,
    /// The table version whose model id was last checked, and that id: a search of the same
    /// version with the same model skips reading the id again (a query of its own).
    checked_model: std::sync::Mutex<Option<(u64, String)>>,
    /// The table handle searches reuse (opening it reads the manifest and costs more than a
    /// small search); dropped by every sync so the next search opens the new version.
    reader: std::sync::Mutex<Option<Table>>,
    /// The in-memory view searches use while the table is small, for the version it was read at.
    view: std::sync::RwLock<Option<ViewState>>,
    /// Held while a view is being read, so that concurrent searches read it once.
    view_loading: tokio::sync::Mutex<()>,
    /// Tables with more rows are searched by LanceDB; 0 turns the view off.
    view_max_rows: usize,
}

/// What is known about the in-memory view of one table version.
#[derive(Clone)]
enum ViewState {
    Loaded(Arc<MemoryView>),
    /// The table had too many rows at this version.
    TooLarge(u64),
}

impl ViewState {
    fn version(&self) -> u64 {
        match self {
            Self::Loaded(view) => view.version,
            Self::TooLarge(version) => *version,
        }
    }
}

/// How stale a reused table handle may be with respect to writes by other processes: reads
/// check for a newer version when this much time has passed since the last check. Writes by
/// this process are seen at once (a sync drops the handle).
pub const READ_CONSISTENCY: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for EntityIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityIndex")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl EntityIndex {
    /// Opens the database at `uri` (a directory, created when missing). The table itself is
    /// created by the first [`Self::sync`].
    pub async fn open(uri: &str) -> IndexResult<Self> {
        Self::open_with(uri, &[]).await
    }

    /// Opens the database at `uri` — a directory or an object store URI such as
    /// `s3://bucket/path` — with LanceDB storage options (for S3: `aws_endpoint`,
    /// `aws_region`, `aws_access_key_id`, `aws_secret_access_key`, `allow_http`…; options not
    /// given are read from the `AWS_*` environment variables by LanceDB).
    pub async fn open_with(uri: &str, storage_options: &[(String, String)]) -> IndexResult<Self> {
        let db = lancedb::connect(uri)
            .storage_options(storage_options.iter().cloned())
            .read_consistency_interval(READ_CONSISTENCY)
            .execute()
            .await
            .map_err(|source| IndexError::Open {
                uri: uri.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self {
            uri: uri.to_owned(),
            db,
            checked_model: std::sync::Mutex::new(None),
            reader: std::sync::Mutex::new(None),
            view: std::sync::RwLock::new(None),
            view_loading: tokio::sync::Mutex::new(()),
            view_max_rows: view::DEFAULT_MAX_ROWS,
        })
    }

    /// The same index, searching tables of up to `rows` rows in memory (0: always by LanceDB).
    pub fn with_memory_view_max_rows(mut self, rows: usize) -> Self {
        self.view_max_rows = rows;
        self
    }

    /// The URI the index was opened with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Number of rows (0 before the first sync).
    pub async fn len(&self) -> IndexResult<usize> {
        match self.table().await? {
            Some(table) => table
                .count_rows(None)
                .await
                .map_err(|e| self.table_error("counting rows", e)),
            None => Ok(0),
        }
    }

    /// True when the index holds no row.
    pub async fn is_empty(&self) -> IndexResult<bool> {
        Ok(self.len().await? == 0)
    }

    /// Runs `request`; `embedder` embeds the query text in the vector and hybrid modes and
    /// must be the model the index was synced with.
    pub async fn search(
        &self,
        request: &SearchRequest,
        embedder: &dyn Embedder,
    ) -> IndexResult<Vec<Hit>> {
        request.validate()?;
        // Nothing to search before the first sync, and nothing to compare with vectors of
        // another model: do not embed for nothing.
        let Some(table) = self.reader().await? else {
            return Ok(Vec::new());
        };
        let vector = match request.mode {
            SearchMode::Lexical => None,
            SearchMode::Vector | SearchMode::Hybrid => {
                self.check_model(&table, embedder.model_id()).await?;
                Some(QueryVector {
                    model_id: embedder.model_id().to_owned(),
                    vector: embed_query(embedder, &request.text)?,
                })
            }
        };
        self.search_embedded(request, vector.as_ref()).await
    }

    /// Runs `request` with its text already embedded (`vector`, required in the vector and
    /// hybrid modes): for callers that embed elsewhere, e.g. many queries in one batch.
    pub async fn search_embedded(
        &self,
        request: &SearchRequest,
        vector: Option<&QueryVector>,
    ) -> IndexResult<Vec<Hit>> {
        request.validate()?;
        let Some(table) = self.reader().await? else {
            return Ok(Vec::new());
        };
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let needs_vector = || {
            vector.ok_or_else(|| {
                IndexError::Request(format!(
                    "the {:?} mode needs the query's embedding",
                    request.mode
                ))
            })
        };
        if let Some(view) = self.memory_view(&table).await? {
            if request.mode != SearchMode::Lexical {
                let query = needs_vector()?;
                if let Some(stored) = view.model_id().filter(|m| *m != query.model_id) {
                    return Err(IndexError::ModelMismatch {
                        uri: self.uri.clone(),
                        table: TABLE.to_owned(),
                        stored: stored.to_owned(),
                        query: query.model_id.clone(),
                    });
                }
            }
            return Ok(view.search(request, vector));
        }
        let filter = request.filter();
        match request.mode {
            SearchMode::Vector => {
                self.vector_search(&table, needs_vector()?, filter.as_deref(), request.limit)
                    .await
            }
            SearchMode::Lexical => {
                self.lexical_search(&table, &request.text, filter.as_deref(), request.limit)
                    .await
            }
            SearchMode::Hybrid => {
                // The fusion is ours rather than LanceDB's hybrid query (vector query plus
                // full-text search, reranked): both halves then get exactly the same SQL
                // filter, the candidates of each half are fetched deeper than the final
                // limit (so a hit ranked low by one half but high by the other survives),
                // and the score is the plain documented RRF sum, independent of how a
                // reranker normalises BM25 and distances between releases.
                // The two halves run concurrently.
                let depth = request.limit.saturating_mul(4);
                let query_vector = needs_vector()?;
                let (vector, lexical) = futures::join!(
                    self.vector_search(&table, query_vector, filter.as_deref(), depth),
                    self.lexical_search(&table, &request.text, filter.as_deref(), depth)
                );
                Ok(reciprocal_rank_fusion(&[vector?, lexical?], request.limit))
            }
        }
    }

    /// Nearest neighbours by cosine distance; score = 1 − distance (the cosine similarity).
    /// There is no vector index: a few thousand rows are searched exactly (flat) in
    /// milliseconds, and the filter is applied before the search, so `limit` hits come back
    /// whenever that many rows pass it.
    async fn vector_search(
        &self,
        table: &Table,
        query_vector: &QueryVector,
        filter: Option<&str>,
        limit: usize,
    ) -> IndexResult<Vec<Hit>> {
        self.check_model(table, &query_vector.model_id).await?;
        let query = table
            .query()
            .nearest_to(query_vector.vector.as_slice())
            .map_err(|e| self.table_error("building the vector query", e))?
            .column(col::VECTOR)
            .distance_type(DistanceType::Cosine)
            .select(Select::columns(&hit_columns(col::DISTANCE)))
            .limit(limit);
        self.run_search(query, filter, "vector search", col::DISTANCE, |d| 1.0 - d)
            .await
    }

    /// BM25 full-text search over `text` (stemmed English, stop words removed); score = BM25.
    async fn lexical_search(
        &self,
        table: &Table,
        text: &str,
        filter: Option<&str>,
        limit: usize,
    ) -> IndexResult<Vec<Hit>> {
        let fts = FullTextSearchQuery::new(text.to_owned())
            .with_column(col::TEXT.to_owned())
            .map_err(|e| IndexError::Request(format!("full-text query '{text}': {e}")))?;
        let query = table
            .query()
            .full_text_search(fts)
            .select(Select::columns(&hit_columns(col::SCORE)))
            .limit(limit);
        let mut hits = self
            .run_search(query, filter, "full-text search", col::SCORE, |s| s)
            .await?;
        // Lance returns BM25 order; sort anyway (stable, by IRI on ties) so the ranking that
        // the fusion consumes does not depend on how results were batched.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.iri.cmp(&b.iri)));
        Ok(hits)
    }

    /// Refuses to compare a query vector with vectors of another model.
    async fn check_model(&self, table: &Table, model_id: &str) -> IndexResult<()> {
        let version = table
            .version()
            .await
            .map_err(|e| self.table_error("reading the table version", e))?;
        let checked = |cache: &Option<(u64, String)>| {
            cache
                .as_ref()
                .is_some_and(|(v, model)| *v == version && model == model_id)
        };
        if self.checked_model.lock().is_ok_and(|cache| checked(&cache)) {
            return Ok(());
        }
        let batches: Vec<_> = table
            .query()
            .select(Select::columns(&[col::MODEL_ID]))
            .limit(1)
            .execute()
            .await
            .map_err(|e| self.table_error("reading the model id", e))?
            .try_collect()
            .await
            .map_err(|e| self.table_error("reading the model id", e))?;
        for batch in &batches {
            let ids = Columns::new(batch, &self.uri).strings(col::MODEL_ID)?;
            if let Some(stored) = ids.iter().flatten().next() {
                if stored != model_id {
                    return Err(IndexError::ModelMismatch {
                        uri: self.uri.clone(),
                        table: TABLE.to_owned(),
                        stored: stored.to_owned(),
                        query: model_id.to_owned(),
                    });
                }
            }
        }
        if let Ok(mut cache) = self.checked_model.lock() {
            *cache = Some((version, model_id.to_owned()));
        }
        Ok(())
    }

    /// The reused table handle for searches, opened when there is none.
    async fn reader(&self) -> IndexResult<Option<Table>> {
        if let Some(table) = self.reader.lock().ok().and_then(|t| t.clone()) {
            return Ok(Some(table));
        }
        let table = self.table().await?;
        if let (Some(table), Ok(mut slot)) = (&table, self.reader.lock()) {
            *slot = Some(table.clone());
        }
        Ok(table)
    }

    /// The in-memory view of the table's current version, read when there is none for it;
    /// `None` when views are off or the table has too many rows.
    async fn memory_view(&self, table: &Table) -> IndexResult<Option<Arc<MemoryView>>> {
        if self.view_max_rows == 0 {
            return Ok(None);
        }
        let version = table
            .version()
            .await
            .map_err(|e| self.table_error("reading the table version", e))?;
        let current = || {
            self.view
                .read()
                .ok()
                .and_then(|v| v.clone())
                .filter(|state| state.version() == version)
        };
        let state = match current() {
            Some(state) => state,
            None => {
                let _loading = self.view_loading.lock().await;
                match current() {
                    Some(state) => state,
                    None => {
                        let rows = table
                            .count_rows(None)
                            .await
                            .map_err(|e| self.table_error("counting rows", e))?;
                        let state = if rows > self.view_max_rows {
                            ViewState::TooLarge(version)
                        } else {
                            let view = MemoryView::load(table, version, &self.uri).await?;
                            tracing::debug!(uri = %self.uri, version, rows = view.len(), "in-memory view read");
                            ViewState::Loaded(Arc::new(view))
                        };
                        if let Ok(mut slot) = self.view.write() {
                            *slot = Some(state.clone());
                        }
                        state
                    }
                }
            }
        };
        Ok(match state {
            ViewState::Loaded(view) => Some(view),
            ViewState::TooLarge(_) => None,
        })
    }

    /// Drops the reused handle (after a write).
    fn drop_reader(&self) {
        if let Ok(mut slot) = self.reader.lock() {
            *slot = None;
        }
    }

    /// The table, or `None` before the first sync.
    async fn table(&self) -> IndexResult<Option<Table>> {
        match self.db.open_table(TABLE).execute().await {
            Ok(table) => Ok(Some(table)),
            Err(lancedb::Error::TableNotFound { .. }) => Ok(None),
            Err(e) => Err(self.table_error("opening", e)),
        }
    }

    /// Runs a vector or full-text `query` under `filter` and reads its rows as hits, scored by
    /// `score` of the `score_column`.
    async fn run_search<Q: ExecutableQuery + QueryBase>(
        &self,
        query: Q,
        filter: Option<&str>,
        action: &'static str,
        score_column: &str,
        score: impl Fn(f32) -> f32,
    ) -> IndexResult<Vec<Hit>> {
        let query = match filter {
            Some(filter) => query.only_if(filter),
            None => query,
        };
        let batches: Vec<_> = query
            .execute()
            .await
            .map_err(|e| self.table_error(action, e))?
            .try_collect()
            .await
            .map_err(|e| self.table_error(action, e))?;
        let mut hits = Vec::new();
        for batch in &batches {
            hits.extend(Columns::new(batch, &self.uri).hits(score_column, &score)?);
        }
        Ok(hits)
    }

    fn table_error(&self, action: &'static str, source: lancedb::Error) -> IndexError {
        IndexError::Table {
            uri: self.uri.clone(),
            table: TABLE.to_owned(),
            action,
            source: Box::new(source),
        }
    }
}

/// A query text's embedding and the model that made it (checked against the index's model).
#[derive(Debug, Clone)]
pub struct QueryVector {
    /// The embedding model's id.
    pub model_id: String,
    /// The unit-length vector.
    pub vector: Vec<f32>,
}

/// The columns a search returns: those of a [`Hit`] and the score column, named explicitly
/// (Lance warns that it will stop adding score columns that a projection leaves out).
fn hit_columns(score: &'static str) -> Vec<&'static str> {
    HIT_COLUMNS.iter().copied().chain([score]).collect()
}

/// Embeds one query text, checking the embedder's contract.
pub fn embed_query(embedder: &dyn Embedder, text: &str) -> IndexResult<Vec<f32>> {
    let mut vectors = sync::embed_checked(embedder, &[text])?;
    vectors.pop().ok_or_else(|| IndexError::BadEmbedding {
        model: embedder.model_id().to_owned(),
        message: "returned no vector for the query".into(),
    })
}
