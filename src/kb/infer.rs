//! RDFS materialisation at load time. The entailments that matter for KB individuals — their
//! super-classes (an equipment class is also a `sosa:FeatureOfInterest` and a `skos:Concept`),
//! super-properties (`akg:inCategory` entails `skos:broader`, `akg:hasMonitoredProperty`
//! entails `ssn:hasProperty`) and domain/range typing — are computed with SPARQL rules over a
//! scratch in-memory Oxigraph store until nothing new appears, and stored in their own fact
//! graph, so plain SPARQL and Linked-Data clients see them without a reasoner of their own.
//!
//! Why our own rules: Oxigraph has no reasoner, and sophia's (`sophia_reasoner` 0.10) does not
//! compile next to Oxigraph 0.5.13.

use super::error::{KbError, KbResult};
use crate::vocab::KB;
use oxigraph::model::vocab::{rdf, rdfs};
use oxigraph::model::{GraphNameRef, NamedOrBlankNode, Term, Triple, TripleRef};
use oxigraph::sparql::{QueryResults, SparqlEvaluator};
use oxigraph::store::Store;
use std::collections::HashSet;

/// RDFS rules as SPARQL CONSTRUCT queries (rule names of RDF 1.1 Semantics §9.2).
const RULES: &[(&str, &str)] = &[
    (
        "rdfs9 (subClassOf)",
        "CONSTRUCT { ?x a ?d } WHERE { ?x a ?c . ?c <http://www.w3.org/2000/01/rdf-schema#subClassOf>+ ?d }",
    ),
    (
        "rdfs7 (subPropertyOf)",
        "CONSTRUCT { ?x ?q ?y } WHERE { ?p <http://www.w3.org/2000/01/rdf-schema#subPropertyOf>+ ?q . ?x ?p ?y }",
    ),
    (
        "rdfs2 (domain)",
        "CONSTRUCT { ?x a ?c } WHERE { ?p <http://www.w3.org/2000/01/rdf-schema#domain> ?c . ?x ?p ?y }",
    ),
    (
        "rdfs3 (range)",
        "CONSTRUCT { ?y a ?c } WHERE { ?p <http://www.w3.org/2000/01/rdf-schema#range> ?c . ?x ?p ?y FILTER(!isLiteral(?y)) }",
    ),
];

/// At most this many rounds; two suffice for RDFS over our ontology (paths close transitivity).
const MAX_ROUNDS: usize = 8;

/// The RDFS entailments of `asserted` that are about KB individuals and not already asserted.
pub fn rdfs_entailments<'a>(
    asserted: impl IntoIterator<Item = TripleRef<'a>>,
) -> KbResult<Vec<Triple>> {
    let err = |e: &dyn std::fmt::Display| KbError::Reasoner(e.to_string());
    let scratch = Store::new()?;
    let asserted: HashSet<Triple> = asserted.into_iter().map(TripleRef::into_owned).collect();
    let mut loader = scratch.bulk_loader();
    loader
        .load_quads(
            asserted
                .iter()
                .map(|t| t.as_ref().in_graph(GraphNameRef::DefaultGraph).into_owned()),
        )
        .map_err(|e| err(&e))?;
    loader.commit().map_err(|e| err(&e))?;

    let mut inferred: HashSet<Triple> = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let mut new = Vec::new();
        for (name, rule) in RULES {
            let results = SparqlEvaluator::new()
                .parse_query(rule)
                .map_err(|e| KbError::Reasoner(format!("{name}: {e}")))?
                .on_store(&scratch)
                .execute()
                .map_err(|e| KbError::Reasoner(format!("{name}: {e}")))?;
            let QueryResults::Graph(triples) = results else {
                continue;
            };
            for t in triples {
                let t = t.map_err(|e| KbError::Reasoner(format!("{name}: {e}")))?;
                if !asserted.contains(&t) && !inferred.contains(&t) {
                    new.push(t);
                }
            }
        }
        if new.is_empty() {
            break;
        }
        for t in new {
            scratch.insert(t.as_ref().in_graph(GraphNameRef::DefaultGraph))?;
            inferred.insert(t);
        }
    }
    let mut useful: Vec<Triple> = inferred.into_iter().filter(is_useful).collect();
    useful.sort_by_cached_key(|t| t.to_string());
    Ok(useful)
}

/// Keeps entailments about KB individuals that say something: drops trivial RDFS typing
/// (`rdfs:Resource`, `rdf:Property`, `rdfs:Class`, `rdfs:Datatype`).
fn is_useful(t: &Triple) -> bool {
    let about_kb =
        matches!(&t.subject, NamedOrBlankNode::NamedNode(n) if n.as_str().starts_with(KB));
    let trivial_type = t.predicate == rdf::TYPE
        && matches!(&t.object, Term::NamedNode(n)
            if *n == rdfs::RESOURCE || *n == rdf::PROPERTY || *n == rdfs::CLASS || *n == rdfs::DATATYPE);
    about_kb && !trivial_type
}
