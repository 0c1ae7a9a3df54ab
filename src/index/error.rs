//! Errors of the entity index. Each names what failed: the index URI, the table, the column.

use crate::embed::EmbedError;
use crate::kb::KbError;
use thiserror::Error;

/// An error while building, syncing or searching the entity index. LanceDB's errors are boxed:
/// they are large, and every index result would carry their size.
#[derive(Debug, Error)]
pub enum IndexError {
    /// The LanceDB database at `uri` could not be opened.
    #[error("index {uri}: cannot open the database: {source}")]
    Open {
        uri: String,
        #[source]
        source: Box<lancedb::Error>,
    },
    /// An operation on a table failed.
    #[error("index {uri}, table {table}: {action} failed: {source}")]
    Table {
        uri: String,
        table: String,
        action: &'static str,
        #[source]
        source: Box<lancedb::Error>,
    },
    /// A column is missing from the table or has an unexpected type.
    #[error("index {uri}, table {table}, column {column}: {message}")]
    Column {
        uri: String,
        table: String,
        column: String,
        message: String,
    },
    /// Building the Arrow batch of new rows failed.
    #[error("index table {table}: building the arrow batch failed: {source}")]
    Arrow {
        table: String,
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// The embedder failed.
    #[error("embedding with model {model} failed: {source}")]
    Embed {
        model: String,
        #[source]
        source: EmbedError,
    },
    /// The embedder broke its contract (wrong number or size of vectors).
    #[error("embedding with model {model}: {message}")]
    BadEmbedding { model: String, message: String },
    /// The table holds vectors of another model than the one given for the query.
    #[error("index {uri}, table {table}: its vectors come from model {stored}, but the query embedder is {query}; sync the index with that model first")]
    ModelMismatch {
        uri: String,
        table: String,
        stored: String,
        query: String,
    },
    /// The documents given to a sync are inconsistent.
    #[error("index documents: {0}")]
    Documents(String),
    /// The search request is invalid.
    #[error("search request: {0}")]
    Request(String),
    /// Reading the knowledge base failed.
    #[error(transparent)]
    Kb(#[from] KbError),
}

/// Result alias of the index module.
pub type IndexResult<T> = Result<T, IndexError>;
