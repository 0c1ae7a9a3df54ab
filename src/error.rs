//! The crate-wide error: one variant per module error, so callers can match on where it came from.

use thiserror::Error;

/// Any error of the assetkg library.
#[derive(Debug, Error)]
pub enum Error {
    /// Loading, validating or querying the knowledge base failed.
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
    /// Loading a model or embedding failed.
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    /// Syncing or searching the entity index failed.
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
