//! The default backend: an Oxigraph store in this process, on disk (RocksDB) or in memory.

use super::{collect_results, GraphBackend, GraphWrite};
use crate::kb::error::{KbError, KbResult};
use crate::kb::query::{QueryLimits, QueryOutcome};
use crate::vocab::PREFIXES;
use oxigraph::model::{
    GraphName, GraphNameRef, NamedNode, NamedNodeRef, NamedOrBlankNode, NamedOrBlankNodeRef, Quad,
    TermRef,
};
use oxigraph::sparql::{QueryEvaluationError, SparqlEvaluator};
use oxigraph::store::Store;
use std::path::{Path, PathBuf};

/// An Oxigraph store owned by this process.
pub struct EmbeddedStore {
    store: Store,
    /// The RocksDB directory (`None` in memory).
    dir: Option<PathBuf>,
}

impl EmbeddedStore {
    /// Opens (or creates) the on-disk store in `dir`.
    pub fn open(dir: &Path) -> KbResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| KbError::io(dir, e))?;
        Ok(Self {
            store: Store::open(dir)?,
            dir: Some(dir.to_owned()),
        })
    }

    /// A fresh in-memory store.
    pub fn in_memory() -> KbResult<Self> {
        Ok(Self {
            store: Store::new()?,
            dir: None,
        })
    }
}

impl GraphBackend for EmbeddedStore {
    fn quads(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<Vec<Quad>> {
        Ok(self
            .store
            .quads_for_pattern(subject, predicate, object, graph)
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn matches_any(
        &self,
        subject: Option<NamedOrBlankNodeRef<'_>>,
        predicate: Option<NamedNodeRef<'_>>,
        object: Option<TermRef<'_>>,
        graph: Option<GraphNameRef<'_>>,
    ) -> KbResult<bool> {
        match self
            .store
            .quads_for_pattern(subject, predicate, object, graph)
            .next()
        {
            Some(quad) => quad.map(|_| true).map_err(Into::into),
            None => Ok(false),
        }
    }

    fn named_graphs(&self) -> KbResult<Vec<NamedNode>> {
        let mut graphs = Vec::new();
        for graph in self.store.named_graphs() {
            if let NamedOrBlankNode::NamedNode(graph) = graph? {
                graphs.push(graph);
            }
        }
        Ok(graphs)
    }

    fn quad_count(&self) -> KbResult<usize> {
        Ok(self.store.len()?)
    }

    fn query(&self, sparql: &str, limits: Option<&QueryLimits>) -> KbResult<QueryOutcome> {
        let mut evaluator = SparqlEvaluator::new();
        if let Some(limits) = limits {
            evaluator = evaluator.with_cancellation_token(limits.cancel.clone());
        }
        for (prefix, iri) in PREFIXES {
            evaluator = evaluator
                .with_prefix(*prefix, *iri)
                .map_err(|e| KbError::QuerySyntax(e.to_string()))?;
        }
        // Not `set_default_graph_as_union`: Oxigraph's union keeps one copy of a triple per
        // graph that states it, so counts over the default graph would not be set counts. The
        // store's own default graph holds the merge (see commit.rs).
        let prepared = evaluator
            .parse_query(sparql)
            .map_err(|e| KbError::QuerySyntax(e.to_string()))?;
        let eval = |e: QueryEvaluationError| match (e, limits) {
            (QueryEvaluationError::Cancelled, Some(limits)) => KbError::QueryTimeout {
                seconds: limits.timeout.as_secs_f64(),
            },
            (e, _) => KbError::QueryEvaluation(e.to_string()),
        };
        let results = prepared.on_store(&self.store).execute().map_err(eval)?;
        collect_results(results, limits.map_or(usize::MAX, |l| l.max_results), eval)
    }

    fn write(&self, write: &GraphWrite) -> KbResult<()> {
        let mut tx = self.store.start_transaction()?;
        for quad in &write.remove {
            tx.remove(quad);
        }
        for graph in &write.drop_graphs {
            tx.remove_named_graph(graph)?;
        }
        for quad in &write.insert {
            if let GraphName::NamedNode(g) = &quad.graph_name {
                tx.insert_named_graph(g);
            }
            tx.insert(quad);
        }
        tx.commit()?;
        Ok(())
    }

    fn location(&self) -> String {
        match &self.dir {
            Some(dir) => format!("embedded store {}", dir.display()),
            None => "in-memory store".to_owned(),
        }
    }
}
