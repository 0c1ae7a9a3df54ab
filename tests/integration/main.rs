//! Integration tests: one binary, one module per area. They run against the real Oxigraph store
//! (in memory and RocksDB in a temporary directory), the real SHACL engine and the bundled KB.

mod agent;
mod augment;
mod common;
mod curation;
mod deployment;
mod embed;
mod index;
mod kb_load;
mod kb_matrix;
mod kb_query;
mod search;
mod server;
mod servers;
mod tasks;
mod train;
