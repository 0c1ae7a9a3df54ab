//! The crate-wide error: one variant per module error, so callers can match on where it came from.

use thiserror::Error;

/// Any error of the assetkg library.
#[derive(Debug, Error)]
pub enum Error {
    /// Loading, validating or querying the knowledge base failed.
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
