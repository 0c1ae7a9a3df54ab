//! Retrieval for clients: graph reads with provenance ([`facts`]) and task-aware
//! recommendation that fuses the embedding ranking with the graph and explains each item
//! ([`recommend`]).

pub mod facts;
pub mod recommend;

pub use recommend::{recommend, RecommendRequest, Recommendations};

use thiserror::Error;

/// An error of a retrieval request.
#[derive(Debug, Error)]
pub enum RetrievalError {
    /// The request itself is wrong (empty query, unknown task…).
    #[error("{0}")]
    Request(String),
    /// Reading the graph failed.
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
    /// Searching the index failed.
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
}
