//! Reads of the graph for clients: entity summaries, relations in both directions with the
//! provenance of each fact (the fact graphs that state it and their headers), keyset-paginated
//! entity lists, and the short paths that link two entities (for explanations).

use crate::index::documents::{iri, select, value};
use crate::index::{class_of_kind, kind_of_class, KINDS};
use crate::kb::{KbResult, KnowledgeBase};
use crate::vocab::{AKG, INFERRED_GRAPH, KB};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where a fact comes from: one fact graph and its header.
#[derive(Debug, Clone, PartialEq, Serialize, async_graphql::SimpleObject)]
pub struct Provenance {
    /// The fact graph IRI.
    pub graph: String,
    /// Its title.
    pub title: String,
    /// The source it is attributed to (IRI).
    pub source: Option<String>,
    /// The source's label.
    pub source_label: Option<String>,
    /// `vetted`, `proposed` or `rejected` (graph-level expert review).
    pub vetting_status: String,
    /// When the graph was generated (xsd:dateTime).
    pub generated_at: Option<String>,
}

/// The headers of every fact graph, by graph IRI.
#[derive(Debug, Clone, Default)]
pub struct GraphHeaders(HashMap<String, Provenance>);

impl GraphHeaders {
    /// Reads the headers from the store.
    pub fn read(kb: &KnowledgeBase) -> KbResult<Self> {
        let q = "SELECT ?g ?title ?status ?source ?sourceLabel ?time WHERE {
            GRAPH ?g { ?g a akg:FactGraph ; dct:title ?title ; akg:vettingStatus ?status .
              OPTIONAL { ?g prov:wasAttributedTo ?source .
                         OPTIONAL { ?source skos:prefLabel ?sourceLabel } }
              OPTIONAL { ?g prov:generatedAtTime ?time } } }";
        let mut headers = HashMap::new();
        for row in select(kb, q)? {
            let (Some(graph), Some(title), Some(status)) =
                (iri(&row[0]), value(&row[1]), iri(&row[2]))
            else {
                continue;
            };
            headers.entry(graph.clone()).or_insert_with(|| Provenance {
                graph,
                title,
                source: iri(&row[3]),
                source_label: value(&row[4]),
                vetting_status: status.rsplit('#').next().unwrap_or_default().to_owned(),
                generated_at: value(&row[5]),
            });
        }
        Ok(Self(headers))
    }

    /// The provenance of `graph` (a bare record when the graph has no header).
    pub fn of(&self, graph: &str) -> Provenance {
        self.0.get(graph).cloned().unwrap_or_else(|| Provenance {
            graph: graph.to_owned(),
            title: String::new(),
            source: None,
            source_label: None,
            vetting_status: "proposed".into(),
            generated_at: None,
        })
    }
}

/// Vetting status of a fact stated only by the RDFS reasoner.
pub const INFERRED: &str = "inferred";

/// The vetting status of a fact from its graphs: vetted when any asserting graph is vetted,
/// else proposed; `inferred` when only the reasoner states it.
fn fact_status(provenance: &[Provenance]) -> String {
    let asserted: Vec<&Provenance> = provenance
        .iter()
        .filter(|p| p.graph != INFERRED_GRAPH.as_str())
        .collect();
    if asserted.is_empty() {
        INFERRED.into()
    } else if asserted.iter().any(|p| p.vetting_status == "vetted") {
        "vetted".into()
    } else {
        "proposed".into()
    }
}

/// One triple with where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, async_graphql::SimpleObject)]
pub struct Fact {
    /// Subject IRI.
    pub subject: String,
    /// Predicate IRI.
    pub predicate: String,
    /// Object IRI.
    pub object: String,
    /// The fact graphs stating it.
    pub provenance: Vec<Provenance>,
    /// `vetted` when a vetted graph states it, `proposed` otherwise, `inferred` when only the
    /// reasoner does.
    pub vetting_status: String,
}

impl Fact {
    /// `subject —predicate→ object`, compacted, for people.
    pub fn display(&self) -> String {
        use crate::vocab::compact;
        format!(
            "{} —{}→ {}",
            compact(&self.subject),
            compact(&self.predicate),
            compact(&self.object)
        )
    }
}

/// The provenance of `subject predicate object`, one record per graph stating it.
pub fn provenance_of(
    kb: &KnowledgeBase,
    headers: &GraphHeaders,
    subject: &str,
    predicate: &str,
    object: &str,
) -> KbResult<Vec<Provenance>> {
    let q = format!("SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ <{subject}> <{predicate}> <{object}> }} }} ORDER BY ?g");
    Ok(select(kb, &q)?
        .iter()
        .filter_map(|row| iri(&row[0]))
        .map(|g| headers.of(&g))
        .collect())
}

/// An entity as clients first see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntitySummary {
    /// The IRI.
    pub iri: String,
    /// One of the index kinds ([`KINDS`]).
    pub kind: String,
    /// `skos:prefLabel`.
    pub label: String,
    /// `skos:definition`.
    pub definition: Option<String>,
    /// `skos:altLabel`s, sorted.
    pub alt_labels: Vec<String>,
    /// The code of a failure-mode class.
    pub code: Option<String>,
}

/// Summaries of the entities among `iris` (unknown IRIs and non-entities are left out).
pub fn entity_summaries(
    kb: &KnowledgeBase,
    iris: &[String],
) -> KbResult<HashMap<String, EntitySummary>> {
    let mut out = HashMap::new();
    for chunk in iris.chunks(200) {
        let values: String = chunk
            .iter()
            .filter(|i| is_plain_iri(i))
            .map(|i| format!("<{i}> "))
            .collect();
        if values.is_empty() {
            continue;
        }
        let q = format!(
            "SELECT ?e ?type ?label ?definition ?alt ?code WHERE {{ VALUES ?e {{ {values} }}
               ?e a ?type ; skos:prefLabel ?label .
               OPTIONAL {{ ?e skos:definition ?definition }}
               OPTIONAL {{ ?e skos:altLabel ?alt }}
               OPTIONAL {{ ?e akg:code ?code }} }}"
        );
        let mut alts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in select(kb, &q)? {
            let (Some(e), Some(type_iri), Some(label)) =
                (iri(&row[0]), iri(&row[1]), value(&row[2]))
            else {
                continue;
            };
            let Some(kind) = kind_of_class(&type_iri) else {
                continue;
            };
            if let Some(alt) = value(&row[4]) {
                alts.entry(e.clone()).or_default().insert(alt);
            }
            out.entry(e.clone()).or_insert_with(|| EntitySummary {
                iri: e,
                kind: kind.to_owned(),
                label,
                definition: value(&row[3]),
                alt_labels: Vec::new(),
                code: value(&row[5]),
            });
        }
        for (e, set) in alts {
            if let Some(summary) = out.get_mut(&e) {
                summary.alt_labels = set.into_iter().collect();
            }
        }
    }
    Ok(out)
}

/// The summary of one entity, `None` when `iri` is no entity of the KB.
pub fn entity_summary(kb: &KnowledgeBase, iri: &str) -> KbResult<Option<EntitySummary>> {
    Ok(entity_summaries(kb, &[iri.to_owned()])?.remove(iri))
}

/// True for an IRI that can be written between `<` and `>` in a query as it is.
pub fn is_plain_iri(iri: &str) -> bool {
    iri.contains(':')
        && !iri.chars().any(|c| {
            c.is_whitespace() || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\')
        })
}

/// Which way a relation points from the entity it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, async_graphql::Enum)]
pub enum Direction {
    /// The entity is the subject.
    Outgoing,
    /// The entity is the object.
    Incoming,
}

/// A link between the entity it is read from and another entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relation {
    /// Which way it points.
    pub direction: Direction,
    /// The entity at the other end.
    pub other: String,
    /// The fact, with its provenance.
    pub fact: Fact,
}

/// The relations of `iri` to other entities (object properties, not `rdf:type`), restricted to
/// `predicate` and `direction` when given; sorted by predicate, direction and other end.
pub fn relations(
    kb: &KnowledgeBase,
    headers: &GraphHeaders,
    iri_: &str,
    predicate: Option<&str>,
    direction: Option<Direction>,
) -> KbResult<Vec<Relation>> {
    if !is_plain_iri(iri_) || predicate.is_some_and(|p| !is_plain_iri(p)) {
        return Ok(Vec::new());
    }
    let p = predicate.map_or("?p".to_owned(), |p| format!("<{p}>"));
    let entity_types: String = KINDS
        .iter()
        .filter_map(|k| class_of_kind(k))
        .map(|c| format!("<{c}> "))
        .collect();
    let out = format!(
        "{{ GRAPH ?g {{ <{iri_}> {p} ?other }} BIND(\"out\" AS ?dir) BIND({p} AS ?pred) }}"
    );
    let inc =
        format!("{{ GRAPH ?g {{ ?other {p} <{iri_}> }} BIND(\"in\" AS ?dir) BIND({p} AS ?pred) }}");
    let pattern = match direction {
        Some(Direction::Outgoing) => out,
        Some(Direction::Incoming) => inc,
        None => format!("{out} UNION {inc}"),
    };
    let q = format!(
        "SELECT DISTINCT ?pred ?dir ?other ?g WHERE {{ {pattern}
           FILTER(isIRI(?other) && ?pred != rdf:type)
           FILTER EXISTS {{ VALUES ?type {{ {entity_types} }} ?other a ?type }} }}"
    );
    let mut grouped: BTreeMap<(String, bool, String), Vec<Provenance>> = BTreeMap::new();
    for row in select(kb, &q)? {
        let (Some(pred), Some(dir), Some(other), Some(graph)) =
            (iri(&row[0]), value(&row[1]), iri(&row[2]), iri(&row[3]))
        else {
            continue;
        };
        grouped
            .entry((pred, dir == "in", other))
            .or_default()
            .push(headers.of(&graph));
    }
    Ok(grouped
        .into_iter()
        .map(|((predicate, incoming, other), provenance)| {
            let (subject, object) = if incoming {
                (other.clone(), iri_.to_owned())
            } else {
                (iri_.to_owned(), other.clone())
            };
            Relation {
                direction: if incoming {
                    Direction::Incoming
                } else {
                    Direction::Outgoing
                },
                other,
                fact: Fact {
                    subject,
                    predicate,
                    object,
                    vetting_status: fact_status(&provenance),
                    provenance,
                },
            }
        })
        .collect())
}

/// A page of an entity list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only entities belonging to this equipment class (IRI), as the index records it.
    pub assets_of: Option<Vec<String>>,
    /// Only labels or synonyms containing this text (case-insensitive).
    pub label_contains: Option<String>,
    /// Entities with IRIs after this one (the cursor).
    pub after: Option<String>,
    /// Page size.
    pub first: usize,
}

/// One page of entity IRIs in IRI order, and whether more follow.
pub fn list_entities(kb: &KnowledgeBase, request: &ListRequest) -> KbResult<(Vec<String>, bool)> {
    let types: String = match &request.kind {
        Some(kind) => class_of_kind(kind)
            .map(|c| format!("<{c}>"))
            .unwrap_or_default(),
        None => KINDS
            .iter()
            .filter_map(|k| class_of_kind(k))
            .map(|c| format!("<{c}> "))
            .collect(),
    };
    if types.is_empty() {
        return Ok((Vec::new(), false));
    }
    let mut filters = Vec::new();
    if let Some(after) = &request.after {
        filters.push(format!("FILTER(STR(?e) > {})", sparql_string(after)));
    }
    if let Some(text) = request
        .label_contains
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        filters.push(format!(
            "FILTER EXISTS {{ ?e skos:prefLabel|skos:altLabel ?l . FILTER(CONTAINS(LCASE(STR(?l)), {})) }}",
            sparql_string(&text.to_lowercase())
        ));
    }
    if let Some(members) = &request.assets_of {
        let values: String = members
            .iter()
            .filter(|i| is_plain_iri(i))
            .map(|i| format!("<{i}> "))
            .collect();
        filters.push(format!("VALUES ?e {{ {values} }}"));
    }
    let q = format!(
        "SELECT DISTINCT ?e WHERE {{ VALUES ?type {{ {types} }} ?e a ?type . {} }} ORDER BY STR(?e) LIMIT {}",
        filters.join("\n"),
        request.first + 1
    );
    let mut iris: Vec<String> = select(kb, &q)?.iter().filter_map(|r| iri(&r[0])).collect();
    let more = iris.len() > request.first;
    iris.truncate(request.first);
    Ok((iris, more))
}

/// A SPARQL string literal.
pub fn sparql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path of one or two facts linking two entities.
pub type FactPath = Vec<Fact>;

/// Paths of one or two asserted facts between `from` and `to`, in either direction, through KB
/// individuals only (never through a class or a fact graph, and never via `rdf:type`), at most
/// `max` of them, shortest first. A relevance judgment in the middle counts only when it judged
/// the sensor relevant, and only for `asset` when one is given: a "not relevant" judgment links
/// the two entities but explains nothing.
pub fn paths(
    kb: &KnowledgeBase,
    headers: &GraphHeaders,
    from: &str,
    to: &str,
    asset: Option<&str>,
    max: usize,
) -> KbResult<Vec<FactPath>> {
    if !is_plain_iri(from) || !is_plain_iri(to) || from == to || max == 0 {
        return Ok(Vec::new());
    }
    let mut found: Vec<FactPath> = Vec::new();
    let direct = format!(
        "SELECT DISTINCT ?p ?dir WHERE {{
           {{ <{from}> ?p <{to}> BIND(\"out\" AS ?dir) }} UNION {{ <{to}> ?p <{from}> BIND(\"in\" AS ?dir) }}
           FILTER(?p != rdf:type) }} ORDER BY ?p ?dir"
    );
    for row in select(kb, &direct)? {
        let (Some(p), Some(dir)) = (iri(&row[0]), value(&row[1])) else {
            continue;
        };
        let (s, o) = if dir == "out" { (from, to) } else { (to, from) };
        if let Some(fact) = asserted_fact(kb, headers, s, &p, o)? {
            found.push(vec![fact]);
        }
    }
    let judgment_filter = match asset.filter(|a| is_plain_iri(a)) {
        Some(asset) => format!(
            "FILTER NOT EXISTS {{ ?m a akg:SensorRelevanceJudgment .
               FILTER NOT EXISTS {{ ?m akg:relevant true ; akg:judgedAsset <{asset}> }} }}"
        ),
        None => {
            "FILTER NOT EXISTS { ?m a akg:SensorRelevanceJudgment ; akg:relevant false }".into()
        }
    };
    let two = format!(
        "SELECT DISTINCT ?m ?p1 ?d1 ?p2 ?d2 WHERE {{
           {{ <{from}> ?p1 ?m BIND(\"out\" AS ?d1) }} UNION {{ ?m ?p1 <{from}> BIND(\"in\" AS ?d1) }}
           {{ ?m ?p2 <{to}> BIND(\"out\" AS ?d2) }} UNION {{ <{to}> ?p2 ?m BIND(\"in\" AS ?d2) }}
           FILTER(isIRI(?m) && STRSTARTS(STR(?m), \"{KB}\") && ?m != <{from}> && ?m != <{to}>)
           FILTER(?p1 != rdf:type && ?p2 != rdf:type)
           {judgment_filter}
         }} ORDER BY ?m ?p1 ?p2 LIMIT {}",
        max * 4
    );
    for row in select(kb, &two)? {
        if found.len() >= max {
            break;
        }
        let (Some(m), Some(p1), Some(d1), Some(p2), Some(d2)) = (
            iri(&row[0]),
            iri(&row[1]),
            value(&row[2]),
            iri(&row[3]),
            value(&row[4]),
        ) else {
            continue;
        };
        let (s1, o1) = if d1 == "out" {
            (from, m.as_str())
        } else {
            (m.as_str(), from)
        };
        let (s2, o2) = if d2 == "out" {
            (m.as_str(), to)
        } else {
            (to, m.as_str())
        };
        let (Some(a), Some(b)) = (
            asserted_fact(kb, headers, s1, &p1, o1)?,
            asserted_fact(kb, headers, s2, &p2, o2)?,
        ) else {
            continue;
        };
        found.push(vec![a, b]);
    }
    found.truncate(max);
    Ok(found)
}

/// The fact with its provenance, `None` when only the reasoner states it (an entailment such
/// as `skos:broader` repeats an asserted link and would only duplicate a path).
fn asserted_fact(
    kb: &KnowledgeBase,
    headers: &GraphHeaders,
    s: &str,
    p: &str,
    o: &str,
) -> KbResult<Option<Fact>> {
    let provenance = provenance_of(kb, headers, s, p, o)?;
    let status = fact_status(&provenance);
    if status == INFERRED || provenance.is_empty() {
        return Ok(None);
    }
    Ok(Some(Fact {
        subject: s.to_owned(),
        predicate: p.to_owned(),
        object: o.to_owned(),
        provenance,
        vetting_status: status,
    }))
}

/// True when `predicate` is a property of the assetkg ontology.
pub fn is_ontology_property(predicate: &str) -> bool {
    predicate.starts_with(AKG)
}
