//! An in-memory view of a small `entities` table at one table version: its rows, vectors and a
//! BM25 index of its texts, searched with the same filters, scores and fusion as the LanceDB
//! queries.
//!
//! Why: the table stays the store (on disk or object storage, shared by replicas, synced
//! incrementally), but a LanceDB query costs several milliseconds of CPU whatever the table size
//! (planning, decoding, DataFusion), which caps a two-core server at ~165 hybrid searches per
//! second. The KB's table has a few thousand rows; an exact scan of them in memory takes a
//! fraction of a millisecond. The view is rebuilt whenever the table's version changes, and
//! tables larger than a configured number of rows are searched by LanceDB as before.

use super::bm25::Bm25;
use super::error::{IndexError, IndexResult};
use super::rows::{col, Columns, HIT_COLUMNS};
use super::search::{reciprocal_rank_fusion, Hit, SearchMode, SearchRequest};
use super::{QueryVector, TABLE};
use futures::TryStreamExt;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::Table;

/// Rows up to which a table is searched in memory by default: 200,000 rows of 384 floats are
/// about 300 MB of vectors, and an exact scan of them still takes tens of milliseconds.
pub const DEFAULT_MAX_ROWS: usize = 200_000;

/// The rows of one table version.
pub struct MemoryView {
    /// The table version the rows were read at.
    pub version: u64,
    /// The model of the stored vectors (`None` for an empty table).
    model_id: Option<String>,
    rows: Vec<Hit>,
    /// Row-major vectors, `dim` floats per row.
    vectors: Vec<f32>,
    /// Euclidean norm of each row's vector (cosine needs it; stored vectors need not be unit).
    norms: Vec<f32>,
    dim: usize,
    bm25: Bm25,
}

impl MemoryView {
    /// Reads every row of `table` (at `version`) into memory.
    pub async fn load(table: &Table, version: u64, uri: &str) -> IndexResult<Self> {
        let error = |source: lancedb::Error| IndexError::Table {
            uri: uri.to_owned(),
            table: TABLE.to_owned(),
            action: "reading the rows for the in-memory view",
            source: Box::new(source),
        };
        let columns: Vec<&str> = HIT_COLUMNS
            .iter()
            .copied()
            .chain([col::MODEL_ID, col::VECTOR])
            .collect();
        let batches: Vec<_> = table
            .query()
            .select(Select::columns(&columns))
            .execute()
            .await
            .map_err(error)?
            .try_collect()
            .await
            .map_err(error)?;
        let mut rows = Vec::new();
        let mut vectors = Vec::new();
        let mut dim = 0;
        let mut model_id: Option<String> = None;
        for batch in &batches {
            let columns = Columns::new(batch, uri);
            rows.extend(columns.entries()?);
            let (floats, batch_dim) = columns.vectors(col::VECTOR)?;
            vectors.extend(floats);
            dim = batch_dim;
            if model_id.is_none() {
                model_id = columns
                    .strings(col::MODEL_ID)?
                    .iter()
                    .flatten()
                    .next()
                    .map(str::to_owned);
            }
        }
        let norms = vectors
            .chunks(dim.max(1))
            .map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt())
            .collect();
        let bm25 = Bm25::new(rows.iter().map(|r| r.text.as_str()))?;
        Ok(Self {
            version,
            model_id,
            rows,
            vectors,
            norms,
            dim,
            bm25,
        })
    }

    /// Number of rows.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The model of the stored vectors (`None` for an empty table).
    pub fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }

    /// Runs `request` (already validated; `vector` present in the vector and hybrid modes and
    /// made by the view's model).
    pub fn search(&self, request: &SearchRequest, vector: Option<&QueryVector>) -> Vec<Hit> {
        let keep = |row: usize| passes(&self.rows[row], request);
        match (request.mode, vector) {
            (SearchMode::Vector, Some(vector)) => {
                self.nearest(&vector.vector, &keep, request.limit)
            }
            (SearchMode::Lexical, _) => self.lexical(&request.text, &keep, request.limit),
            (SearchMode::Hybrid, Some(vector)) => {
                // As the LanceDB path: both halves fetched deeper than the limit, then fused.
                let depth = request.limit.saturating_mul(4);
                let lists = [
                    self.nearest(&vector.vector, &keep, depth),
                    self.lexical(&request.text, &keep, depth),
                ];
                reciprocal_rank_fusion(&lists, request.limit)
            }
            (SearchMode::Vector | SearchMode::Hybrid, None) => Vec::new(),
        }
    }

    /// Exact nearest neighbours by cosine similarity among the rows `keep` accepts.
    fn nearest(&self, query: &[f32], keep: &dyn Fn(usize) -> bool, limit: usize) -> Vec<Hit> {
        if query.len() != self.dim || self.dim == 0 {
            return Vec::new();
        }
        let query_norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let scored = (0..self.rows.len()).filter(|&row| keep(row)).map(|row| {
            let v = &self.vectors[row * self.dim..(row + 1) * self.dim];
            let dot: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            let norm = self.norms[row] * query_norm;
            (row, if norm > 0.0 { dot / norm } else { 0.0 })
        });
        self.top(scored.collect(), limit)
    }

    /// BM25 over the texts of the rows `keep` accepts.
    fn lexical(&self, text: &str, keep: &dyn Fn(usize) -> bool, limit: usize) -> Vec<Hit> {
        self.top(self.bm25.scores(text, keep), limit)
    }

    /// The `limit` best scored rows as hits, best first, ties by IRI.
    fn top(&self, mut scored: Vec<(usize, f32)>, limit: usize) -> Vec<Hit> {
        let order = |a: &(usize, f32), b: &(usize, f32)| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.rows[a.0].iri.cmp(&self.rows[b.0].iri))
        };
        if scored.len() > limit && limit > 0 {
            scored.select_nth_unstable_by(limit - 1, order);
            scored.truncate(limit);
        }
        scored.sort_by(order);
        scored.truncate(limit);
        scored
            .into_iter()
            .map(|(row, score)| Hit {
                score,
                ..self.rows[row].clone()
            })
            .collect()
    }
}

/// The kind and asset restrictions of `request` (the in-memory form of its SQL filter).
fn passes(row: &Hit, request: &SearchRequest) -> bool {
    (request.kinds.is_empty() || request.kinds.contains(&row.kind))
        && request
            .asset
            .as_ref()
            .is_none_or(|asset| row.assets.iter().any(|a| a == asset))
}
