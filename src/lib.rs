//! assetkg: an expert-vetted knowledge graph of industrial assets, their components, failure modes
//! and sensors, with semantic retrieval for maintenance (see README.md and docs/).
//!
//! The library owns everything; the `assetkg` binary only parses the command line and calls it.

pub mod agent;
pub mod api;
pub mod augment;
pub mod config;
pub mod embed;
pub mod error;
pub mod eval;
pub mod index;
pub mod kb;
pub mod progress;
pub mod retrieval;
pub mod tasks;
pub mod train;
pub mod vocab;

pub use error::{Error, Result};
