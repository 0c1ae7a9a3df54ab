//! The GraphQL API: the schema (entity types, queries, curation mutations) with its depth and
//! complexity limits, the mapping of library errors to GraphQL errors with codes (internal
//! errors are logged and reported as `INTERNAL` without detail), and the SDL that
//! `graphql/schema.graphql` must equal.

pub mod agent;
pub mod entity;
pub mod mutation;
pub mod query;

pub use super::Services;

use crate::api::config::Limits;
use crate::index::IndexError;
use crate::kb::KbError;
use crate::retrieval::RetrievalError;
use async_graphql::{ErrorExtensions, Schema};

/// The schema type.
pub type AssetSchema = Schema<query::QueryRoot, mutation::MutationRoot, agent::SubscriptionRoot>;

/// The schema with `limits`; `services` is reachable from every resolver.
pub fn build_schema(services: Option<std::sync::Arc<Services>>, limits: &Limits) -> AssetSchema {
    let builder = Schema::build(
        query::QueryRoot,
        mutation::MutationRoot,
        agent::SubscriptionRoot,
    )
    .limit_depth(limits.graphql_depth)
    .limit_complexity(limits.graphql_complexity);
    match services {
        Some(services) => builder.data(services).finish(),
        None => builder.finish(),
    }
}

/// The schema in SDL, as checked in at `graphql/schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, &Limits::default()).sdl()
}

/// A client error with a code (`BAD_REQUEST`, `NOT_FOUND`, `FORBIDDEN`, …).
pub fn client_error(code: &'static str, message: impl std::fmt::Display) -> async_graphql::Error {
    async_graphql::Error::new(message.to_string()).extend_with(|_, e| e.set("code", code))
}

/// An internal error: logged in full, reported without detail.
pub fn internal(error: impl std::fmt::Display) -> async_graphql::Error {
    tracing::error!(%error, "internal error");
    client_error("INTERNAL", "internal error (logged on the server)")
}

/// Maps a KB error: bad queries and invalid edits are the client's, storage failures ours.
pub fn kb_error(error: KbError) -> async_graphql::Error {
    match error {
        KbError::Store(_) | KbError::Io { .. } | KbError::Reasoner(_) | KbError::Shapes { .. } => {
            internal(error)
        }
        KbError::QueryTimeout { .. } => client_error("TIMEOUT", error),
        KbError::TooManyResults { .. } => client_error("TOO_MANY_RESULTS", error),
        KbError::Invalid(_) => client_error("INVALID", error),
        other => client_error("BAD_REQUEST", other),
    }
}

/// Maps an index error: a bad request is the client's, anything else ours.
pub fn index_error(error: IndexError) -> async_graphql::Error {
    match error {
        IndexError::Request(message) => client_error("BAD_REQUEST", message),
        other => internal(other),
    }
}

/// Maps a retrieval error.
pub fn retrieval_error(error: RetrievalError) -> async_graphql::Error {
    match error {
        RetrievalError::Request(message) => client_error("BAD_REQUEST", message),
        RetrievalError::Kb(e) => kb_error(e),
        RetrievalError::Index(e) => index_error(e),
    }
}

/// Runs synchronous store work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KbError> + Send + 'static,
) -> async_graphql::Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(kb_error),
        Err(join) => Err(internal(join)),
    }
}
