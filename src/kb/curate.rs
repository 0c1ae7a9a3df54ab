//! Curation edits with provenance: a person (or an API token) adds an entity, proposes,
//! asserts or retracts a relation, vets or rejects a proposed one, or runs a SPARQL 1.1 update.
//!
//! Every edit becomes one change set and goes through the write path of every commit
//! (`commit.rs`): the candidate state is validated with the shapes and reasoned over, and only
//! when it conforms is it written, in one transaction with its version record. An invalid edit
//! leaves the store exactly as it was.
//!
//! New facts go into a new curation fact graph `graph:curation/<seq>-<time>` (the sequence
//! number of its commit, so ids are unique and sort in commit order) whose header satisfies the
//! fact-graph shape: a `dct:title`, `prov:wasAttributedTo` the curator as an `akg:Source`
//! `src:user/<slug>` (described in the same graph, so that the graph stands on its own), its
//! `akg:vettingStatus`, `prov:generatedAtTime`, the curator's reason as `rdfs:comment`, and
//! `prov:wasGeneratedBy` the commit's activity in the version log (which has the agent, the
//! action and the exact change). Vetting moves a fact out of its proposed graphs into a new
//! vetted graph that `prov:wasDerivedFrom` them; a curation graph left with no fact loses its
//! header too. Rejecting removes a proposed fact; the rejection is kept in the version log (its
//! action and the removed quads), not as a fact, so queries never see a rejected fact.

use super::commit::{Action, Agent, ChangeSet, Head, Prepared};
use super::error::{KbError, KbResult};
use super::history::{date_time, version_iri, VersionRecord};
use super::{is_fact_graph, KnowledgeBase};
use crate::vocab::{
    akg, compact, dct, expand, is_system_graph, owl, prov, skos, slug, AKG, CURATION_GRAPH,
    INFERRED_GRAPH, KB, ONTOLOGY_GRAPH, PREFIXES, SOURCE, USER_SOURCE, VERSION,
};
use chrono::{DateTime, Utc};
use oxigraph::model::vocab::{rdf, rdfs};
use oxigraph::model::{
    GraphName, GraphNameRef, Literal, NamedNode, NamedNodeRef, NamedOrBlankNode,
    NamedOrBlankNodeRef, Quad, QuadRef, Term, TermRef, Triple, TripleRef,
};
use oxigraph::sparql::SparqlEvaluator;
use oxigraph::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// One curation edit. IRIs may be written in full or as prefixed names of the project
/// (`sensor:vibration`, `akg:detectableBy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Edit {
    /// A new entity of an akg class (IRI or prefixed name like "akg:Sensor", or a kind name like
    /// "sensor"), with its label, definition, synonyms and relations, so that it can satisfy
    /// the shapes in one edit. Its facts are vetted (a curator wrote them). A relation whose
    /// predicate is an `owl:DatatypeProperty` (such as `akg:code`) takes its object as a
    /// literal of the property's range.
    AddEntity {
        iri: String,
        class: String,
        label: String,
        definition: String,
        alt_labels: Vec<String>,
        relations: Vec<(String, String)>,
    },
    /// A new fact between two entities, with status proposed.
    ProposeRelation {
        subject: String,
        predicate: String,
        object: String,
    },
    /// A new fact between two entities, with status vetted.
    AssertRelation {
        subject: String,
        predicate: String,
        object: String,
    },
    /// A fact removed from every fact graph holding it (never from the ontology's).
    RetractRelation {
        subject: String,
        predicate: String,
        object: String,
    },
    /// A proposed fact becomes vetted: it moves to a new vetted curation graph.
    Vet {
        subject: String,
        predicate: String,
        object: String,
    },
    /// A proposed fact is removed; the rejection stays in the version log.
    Reject {
        subject: String,
        predicate: String,
        object: String,
    },
}

/// An edit, who makes it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRequest {
    /// The edit.
    pub edit: Edit,
    /// Who: a user or API token name; it becomes the source `src:user/<slug>`.
    pub agent: String,
    /// Why: kept in the curation graph (`rdfs:comment`) and in the version log.
    pub reason: String,
}

/// What a committed edit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditOutcome {
    /// The new version.
    pub version: VersionRecord,
    /// The version id before the edit.
    pub previous_version: String,
    /// The IRI of the curation fact graph written, if the edit added facts.
    pub graph: Option<String>,
    /// Number of asserted quads added (facts and provenance).
    pub added: usize,
    /// Number of asserted quads removed.
    pub removed: usize,
    /// IRIs of the entities whose facts changed: subjects and IRI objects.
    pub affected: BTreeSet<String>,
}

/// The entity classes an `AddEntity` may name, with the kind name it also accepts.
const ENTITY_CLASSES: [(NamedNodeRef<'static>, &str); 10] = [
    (akg::EQUIPMENT_CATEGORY, "category"),
    (akg::EQUIPMENT_CLASS, "class"),
    (akg::EQUIPMENT_TYPE, "type"),
    (akg::SUBUNIT, "subunit"),
    (akg::MAINTAINABLE_ITEM, "item"),
    (akg::COMPONENT_KIND, "component"),
    (akg::FAILURE_MODE_CLASS, "failure-mode-class"),
    (akg::FAILURE_MODE, "failure-mode"),
    (akg::FAILURE_DESCRIPTION, "failure-description"),
    (akg::SENSOR, "sensor"),
];

/// What an edit does, before its curation graph is named.
struct EditPlan {
    action: Action,
    /// Facts for a new curation graph (none: no graph is written).
    new_facts: Vec<Triple>,
    /// The vetting status of that graph.
    status: NamedNodeRef<'static>,
    /// Its title.
    title: String,
    /// The graphs its facts come from (vetting).
    derived_from: Vec<NamedNode>,
    /// Quads added as they are (an update's inserts into declared fact graphs).
    added: Vec<Quad>,
    /// Quads removed.
    removed: Vec<Quad>,
}

impl EditPlan {
    fn new(action: Action, status: NamedNodeRef<'static>, title: String) -> Self {
        Self {
            action,
            new_facts: Vec::new(),
            status,
            title,
            derived_from: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
        }
    }
}

/// How the ontology declares a property.
enum PropertyKind {
    Object,
    /// A datatype property and its range.
    Datatype(Option<NamedNode>),
}

impl KnowledgeBase {
    /// Applies one curation edit: validated with the shapes, committed with its provenance and
    /// version record, or refused with the store unchanged.
    pub fn apply_edit(&self, request: &EditRequest) -> KbResult<EditOutcome> {
        let _writer = self.write_lock();
        let agent = self.user_agent(&request.agent)?;
        let plan = self.plan_edit(&request.edit, &agent)?;
        self.commit_edit(plan, agent, request.reason.trim())
    }

    /// Runs a curator's SPARQL 1.1 update on an in-memory copy of the KB and commits its effect
    /// as one change set. Triples it inserts into the default graph go into a new vetted
    /// curation graph; triples it deletes from the default graph are retracted from every fact
    /// graph holding them (an entailment held by no fact graph is left alone: it is recomputed).
    /// It may delete from a fact graph, and insert into one that is declared in the result;
    /// it may not write the inferred graph, a system graph or the ontology graph.
    pub fn apply_update(
        &self,
        sparql_update: &str,
        agent: &str,
        reason: &str,
    ) -> KbResult<EditOutcome> {
        let _writer = self.write_lock();
        let agent = self.user_agent(agent)?;
        let plan = self.plan_update(sparql_update, &agent)?;
        self.commit_edit(plan, agent, reason.trim())
    }

    /// Names the curation graph, builds the change set and commits it. The caller holds the
    /// writer lock.
    fn commit_edit(&self, plan: EditPlan, agent: Agent, reason: &str) -> KbResult<EditOutcome> {
        let head = self.head()?;
        let previous_version = match &head.id {
            Some(id) => id.clone(),
            None => self.kb_version()?,
        };
        let seq = head.seq + 1;
        let time = Utc::now();
        let mut change = ChangeSet {
            added: plan.added,
            removed: plan.removed,
        };
        let graph = if plan.new_facts.is_empty() {
            None
        } else {
            let graph = curation_graph(seq, time);
            change.added.extend(curation_header(
                &graph,
                &plan.title,
                &agent,
                plan.status,
                time,
                reason,
                seq,
                &plan.derived_from,
            ));
            change.added.extend(
                plan.new_facts
                    .iter()
                    .map(|t| t.as_ref().in_graph(graph.as_ref()).into_owned()),
            );
            Some(graph)
        };
        let prepared = self.prepare(self.asserted_quads()?, change)?;
        if !prepared.violations.is_empty() {
            return Err(KbError::Invalid(prepared.violations));
        }
        if prepared.is_empty() {
            return Err(KbError::NoChange(format!(
                "the {} changes no asserted fact",
                plan.action.as_str()
            )));
        }
        let info = super::commit::CommitInfo {
            action: plan.action,
            agent,
            reason: reason.to_owned(),
            graph: graph.clone(),
            time,
        };
        let head = Head {
            seq: head.seq,
            id: Some(previous_version.clone()),
        };
        let version = self.commit(&prepared, &head, &info)?;
        Ok(EditOutcome {
            version,
            previous_version,
            graph: graph.map(NamedNode::into_string),
            added: prepared.added.len(),
            removed: prepared.removed.len(),
            affected: affected(&prepared),
        })
    }

    fn plan_edit(&self, edit: &Edit, agent: &Agent) -> KbResult<EditPlan> {
        let who = agent.label.value();
        match edit {
            Edit::AddEntity {
                iri,
                class,
                label,
                definition,
                alt_labels,
                relations,
            } => self.plan_add_entity(iri, class, label, definition, alt_labels, relations, who),
            Edit::ProposeRelation {
                subject,
                predicate,
                object,
            } => self.plan_new_fact(Action::Propose, subject, predicate, object, who),
            Edit::AssertRelation {
                subject,
                predicate,
                object,
            } => self.plan_new_fact(Action::Assert, subject, predicate, object, who),
            Edit::RetractRelation {
                subject,
                predicate,
                object,
            } => {
                let fact = named_triple(subject, predicate, object)?;
                let holders = self.holders(fact.as_ref())?;
                if holders.is_empty() {
                    return Err(KbError::NoSuchFact {
                        fact: show(fact.as_ref()),
                    });
                }
                check_changeable(fact.as_ref(), &holders)?;
                let mut plan = EditPlan::new(Action::Retract, akg::VETTED, String::new());
                plan.removed = in_graphs(&fact, &holders);
                Ok(plan)
            }
            Edit::Vet {
                subject,
                predicate,
                object,
            } => {
                let fact = named_triple(subject, predicate, object)?;
                let (proposed, others) = self.proposed_holders(fact.as_ref())?;
                check_changeable(fact.as_ref(), &proposed)?;
                let mut plan = EditPlan::new(
                    Action::Vet,
                    akg::VETTED,
                    format!("Vetted by {who}: {}", show(fact.as_ref())),
                );
                plan.removed = in_graphs(&fact, &proposed);
                // Already vetted elsewhere: the proposed copies just go.
                let vetted_elsewhere = others
                    .iter()
                    .any(|g| matches!(self.status_of(g), Ok(Some(s)) if s == akg::VETTED));
                if !vetted_elsewhere {
                    plan.new_facts.push(fact);
                    plan.derived_from = proposed;
                }
                Ok(plan)
            }
            Edit::Reject {
                subject,
                predicate,
                object,
            } => {
                let fact = named_triple(subject, predicate, object)?;
                let (proposed, _) = self.proposed_holders(fact.as_ref())?;
                check_changeable(fact.as_ref(), &proposed)?;
                let mut plan = EditPlan::new(Action::Reject, akg::REJECTED, String::new());
                plan.removed = in_graphs(&fact, &proposed);
                Ok(plan)
            }
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of Edit::AddEntity, one by one"
    )]
    fn plan_add_entity(
        &self,
        iri: &str,
        class: &str,
        label: &str,
        definition: &str,
        alt_labels: &[String],
        relations: &[(String, String)],
        who: &str,
    ) -> KbResult<EditPlan> {
        let entity = named("iri", iri)?;
        if !entity.as_str().starts_with(KB) {
            return Err(KbError::ForeignIri {
                iri: compact(entity.as_str()),
                namespace: KB,
            });
        }
        if self.has_asserted_subject(entity.as_ref())? {
            return Err(KbError::EntityExists {
                iri: compact(entity.as_str()),
            });
        }
        let class = entity_class(class)?;
        let en = |text: &str| Literal::new_language_tagged_literal_unchecked(text.trim(), "en");
        let mut facts = vec![Triple::new(entity.clone(), rdf::TYPE, class.clone())];
        // An empty label or definition is left out, so that the shapes name what is missing.
        if !label.trim().is_empty() {
            facts.push(Triple::new(entity.clone(), skos::PREF_LABEL, en(label)));
        }
        if !definition.trim().is_empty() {
            facts.push(Triple::new(
                entity.clone(),
                skos::DEFINITION,
                en(definition),
            ));
        }
        for alt in alt_labels.iter().filter(|a| !a.trim().is_empty()) {
            facts.push(Triple::new(entity.clone(), skos::ALT_LABEL, en(alt)));
        }
        for (predicate, object) in relations {
            let p = named("relations.predicate", predicate)?;
            let object: Term = match self.property_kind(p.as_ref())? {
                Some(PropertyKind::Object) => {
                    let o = named("relations.object", object)?;
                    if o != entity && !self.is_entity(o.as_ref())? {
                        return Err(KbError::UnknownEntity {
                            field: "relations.object",
                            iri: compact(o.as_str()),
                        });
                    }
                    o.into()
                }
                Some(PropertyKind::Datatype(range)) => typed_literal(object, range.as_ref()).into(),
                None => {
                    return Err(KbError::UnknownPredicate {
                        field: "relations.predicate",
                        iri: compact(p.as_str()),
                        expected: "owl:ObjectProperty or owl:DatatypeProperty",
                    })
                }
            };
            facts.push(Triple::new(entity.clone(), p, object));
        }
        let mut plan = EditPlan::new(
            Action::AddEntity,
            akg::VETTED,
            format!(
                "Entity {} ({}) added by {who}",
                compact(entity.as_str()),
                compact(class.as_str())
            ),
        );
        plan.new_facts = facts;
        Ok(plan)
    }

    fn plan_new_fact(
        &self,
        action: Action,
        subject: &str,
        predicate: &str,
        object: &str,
        who: &str,
    ) -> KbResult<EditPlan> {
        let fact = named_triple(subject, predicate, object)?;
        let NamedOrBlankNode::NamedNode(s) = &fact.subject else {
            return Err(KbError::MissingField { field: "subject" });
        };
        let Term::NamedNode(o) = &fact.object else {
            return Err(KbError::MissingField { field: "object" });
        };
        for (field, iri) in [("subject", s), ("object", o)] {
            if !self.is_entity(iri.as_ref())? {
                return Err(KbError::UnknownEntity {
                    field,
                    iri: compact(iri.as_str()),
                });
            }
        }
        if !matches!(
            self.property_kind(fact.predicate.as_ref())?,
            Some(PropertyKind::Object)
        ) {
            return Err(KbError::UnknownPredicate {
                field: "predicate",
                iri: compact(fact.predicate.as_str()),
                expected: "owl:ObjectProperty",
            });
        }
        let holders = self.holders(fact.as_ref())?;
        if !holders.is_empty() {
            return Err(KbError::FactExists {
                fact: show(fact.as_ref()),
                graphs: self.describe_graphs(&holders),
            });
        }
        let (status, verb) = match action {
            Action::Propose => (akg::PROPOSED, "Proposed"),
            _ => (akg::VETTED, "Asserted"),
        };
        let mut plan = EditPlan::new(
            action,
            status,
            format!("{verb} by {who}: {}", show(fact.as_ref())),
        );
        plan.new_facts.push(fact);
        Ok(plan)
    }

    fn plan_update(&self, update: &str, agent: &Agent) -> KbResult<EditPlan> {
        let mut evaluator = SparqlEvaluator::new();
        for (prefix, iri) in PREFIXES {
            evaluator = evaluator
                .with_prefix(*prefix, *iri)
                .map_err(|e| KbError::UpdateSyntax(e.to_string()))?;
        }
        let prepared = evaluator
            .parse_update(update)
            .map_err(|e| KbError::UpdateSyntax(e.to_string()))?;

        // The copy holds what queries see (fact graphs, inferred graph, merged default graph),
        // so that the update's patterns match as a query's would; not the version log.
        let mut before: HashSet<Quad> = HashSet::new();
        for quad in self.store.quads(None, None, None, None)? {
            if !matches!(&quad.graph_name, GraphName::NamedNode(g) if is_system_graph(g.as_ref())) {
                before.insert(quad);
            }
        }
        let scratch = Store::new()?;
        let mut loader = scratch.bulk_loader();
        loader
            .load_quads(before.iter().cloned())
            .map_err(|e| KbError::UpdateEvaluation(e.to_string()))?;
        loader
            .commit()
            .map_err(|e| KbError::UpdateEvaluation(e.to_string()))?;
        prepared
            .on_store(&scratch)
            .execute()
            .map_err(|e| KbError::UpdateEvaluation(e.to_string()))?;
        let after = scratch.iter().collect::<Result<HashSet<Quad>, _>>()?;

        let mut plan = EditPlan::new(
            Action::Update,
            akg::VETTED,
            format!("SPARQL update by {}", agent.label.value()),
        );
        let mut written: BTreeSet<NamedNode> = BTreeSet::new();
        let mut inserted: Vec<&Quad> = after.difference(&before).collect();
        inserted.sort_by_cached_key(|q| q.to_string());
        for quad in inserted {
            match &quad.graph_name {
                GraphName::DefaultGraph => plan.new_facts.push(quad.clone().into()),
                GraphName::NamedNode(g) => {
                    check_writable(g.as_ref())?;
                    written.insert(g.clone());
                    plan.added.push(quad.clone());
                }
                GraphName::BlankNode(b) => {
                    return Err(KbError::UndeclaredFactGraph {
                        graph: b.to_string(),
                    })
                }
            }
        }
        for graph in &written {
            let declared = QuadRef::new(graph, rdf::TYPE, akg::FACT_GRAPH, graph);
            if !after.contains(&declared.into_owned()) {
                return Err(KbError::UndeclaredFactGraph {
                    graph: compact(graph.as_str()),
                });
            }
        }
        for quad in before.difference(&after) {
            match &quad.graph_name {
                GraphName::DefaultGraph => {
                    let fact = TripleRef::from(quad.as_ref());
                    let holders = self.holders(fact)?;
                    check_changeable(fact, &holders)?;
                    plan.removed.extend(in_graphs(&fact.into_owned(), &holders));
                }
                GraphName::NamedNode(g) => {
                    check_writable(g.as_ref())?;
                    plan.removed.push(quad.clone());
                }
                GraphName::BlankNode(_) => plan.removed.push(quad.clone()),
            }
        }
        Ok(plan)
    }

    /// The curator as a source: `src:user/<slug>` with the label the store already has for it
    /// (a source has exactly one `skos:prefLabel`), or the name given.
    fn user_agent(&self, name: &str) -> KbResult<Agent> {
        let name = name.trim();
        if name.is_empty() {
            return Err(KbError::MissingField { field: "agent" });
        }
        let local = slug(name);
        let iri = NamedNode::new(format!("{USER_SOURCE}{local}"))
            .ok()
            .filter(|_| !local.is_empty())
            .ok_or_else(|| KbError::BadIri {
                field: "agent",
                value: name.to_owned(),
                message: "it has no letter or digit to name a source with".to_owned(),
            })?;
        let mut label = None;
        for quad in self.store.quads(
            Some(iri.as_ref().into()),
            Some(skos::PREF_LABEL),
            None,
            None,
        )? {
            if let Term::Literal(l) = quad.object {
                label = Some(l);
                break;
            }
        }
        Ok(Agent {
            label: label
                .unwrap_or_else(|| Literal::new_language_tagged_literal_unchecked(name, "en")),
            iri,
        })
    }

    /// The fact graphs holding `fact`.
    fn holders(&self, fact: TripleRef<'_>) -> KbResult<Vec<NamedNode>> {
        let mut graphs = Vec::new();
        for quad in self.store.quads(
            Some(fact.subject),
            Some(fact.predicate),
            Some(fact.object),
            None,
        )? {
            if let GraphName::NamedNode(g) = quad.graph_name {
                if is_fact_graph(g.as_ref()) {
                    graphs.push(g);
                }
            }
        }
        graphs.sort();
        Ok(graphs)
    }

    /// The proposed graphs holding `fact`, and the other graphs holding it; an error when it
    /// is in none, or in no proposed one.
    fn proposed_holders(&self, fact: TripleRef<'_>) -> KbResult<(Vec<NamedNode>, Vec<NamedNode>)> {
        let holders = self.holders(fact)?;
        if holders.is_empty() {
            return Err(KbError::NoSuchFact { fact: show(fact) });
        }
        let mut proposed = Vec::new();
        let mut others = Vec::new();
        for g in holders {
            if self.status_of(&g)?.as_ref() == Some(&akg::PROPOSED.into_owned()) {
                proposed.push(g);
            } else {
                others.push(g);
            }
        }
        if proposed.is_empty() {
            return Err(KbError::NotProposed {
                fact: show(fact),
                graphs: self.describe_graphs(&others),
            });
        }
        Ok((proposed, others))
    }

    /// The vetting status a fact graph's header gives it.
    fn status_of(&self, graph: &NamedNode) -> KbResult<Option<NamedNode>> {
        for quad in self.store.quads(
            Some(graph.as_ref().into()),
            Some(akg::VETTING_STATUS),
            None,
            Some(graph.as_ref().into()),
        )? {
            if let Term::NamedNode(status) = quad.object {
                return Ok(Some(status));
            }
        }
        Ok(None)
    }

    /// `graph:a (vetted), graph:b (proposed)`, for messages.
    fn describe_graphs(&self, graphs: &[NamedNode]) -> String {
        graphs
            .iter()
            .map(|g| match self.status_of(g) {
                Ok(Some(status)) => format!(
                    "{} ({})",
                    compact(g.as_str()),
                    compact(status.as_str()).trim_start_matches("akg:")
                ),
                _ => compact(g.as_str()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// True when `iri` has an asserted `rdf:type` in a fact graph.
    fn is_entity(&self, iri: NamedNodeRef<'_>) -> KbResult<bool> {
        self.asserted_with(iri, Some(rdf::TYPE))
    }

    /// True when `iri` is the subject of an asserted fact.
    fn has_asserted_subject(&self, iri: NamedNodeRef<'_>) -> KbResult<bool> {
        self.asserted_with(iri, None)
    }

    fn asserted_with(
        &self,
        subject: NamedNodeRef<'_>,
        predicate: Option<NamedNodeRef<'_>>,
    ) -> KbResult<bool> {
        for quad in self
            .store
            .quads(Some(subject.into()), predicate, None, None)?
        {
            if matches!(quad.graph_name, GraphName::NamedNode(g) if is_fact_graph(g.as_ref())) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// How the ontology graph declares `property`, if it does.
    fn property_kind(&self, property: NamedNodeRef<'_>) -> KbResult<Option<PropertyKind>> {
        let ontology = GraphNameRef::from(ONTOLOGY_GRAPH);
        let declared = |kind: NamedNodeRef<'_>| {
            self.store.matches_any(
                Some(property.into()),
                Some(rdf::TYPE),
                Some(kind.into()),
                Some(ontology),
            )
        };
        if declared(owl::OBJECT_PROPERTY)? {
            return Ok(Some(PropertyKind::Object));
        }
        if declared(owl::DATATYPE_PROPERTY)? {
            let mut range = None;
            for quad in self.store.quads(
                Some(property.into()),
                Some(rdfs::RANGE),
                None,
                Some(ontology),
            )? {
                if let Term::NamedNode(r) = quad.object {
                    range = Some(r);
                }
            }
            return Ok(Some(PropertyKind::Datatype(range)));
        }
        Ok(None)
    }
}

/// The IRI of the curation graph of commit `seq`.
fn curation_graph(seq: u64, time: DateTime<Utc>) -> NamedNode {
    NamedNode::new_unchecked(format!(
        "{CURATION_GRAPH}{seq:06}-{}",
        time.format("%Y%m%dT%H%M%SZ")
    ))
}

/// The header of a curation graph (see the module documentation).
#[expect(
    clippy::too_many_arguments,
    reason = "each is one statement of the header"
)]
fn curation_header(
    graph: &NamedNode,
    title: &str,
    agent: &Agent,
    status: NamedNodeRef<'_>,
    time: DateTime<Utc>,
    reason: &str,
    seq: u64,
    derived_from: &[NamedNode],
) -> Vec<Quad> {
    let g = graph.as_ref();
    let mut quads = vec![
        Quad::new(graph.clone(), rdf::TYPE, akg::FACT_GRAPH, g),
        Quad::new(
            graph.clone(),
            dct::TITLE,
            Literal::new_language_tagged_literal_unchecked(title, "en"),
            g,
        ),
        Quad::new(graph.clone(), prov::WAS_ATTRIBUTED_TO, agent.iri.clone(), g),
        Quad::new(graph.clone(), akg::VETTING_STATUS, status, g),
        Quad::new(graph.clone(), prov::GENERATED_AT_TIME, date_time(time), g),
        Quad::new(graph.clone(), prov::WAS_GENERATED_BY, version_iri(seq), g),
        Quad::new(agent.iri.clone(), rdf::TYPE, akg::SOURCE, g),
        Quad::new(agent.iri.clone(), skos::PREF_LABEL, agent.label.clone(), g),
    ];
    if !reason.is_empty() {
        quads.push(Quad::new(
            graph.clone(),
            rdfs::COMMENT,
            Literal::new_language_tagged_literal_unchecked(reason, "en"),
            g,
        ));
    }
    for source in derived_from {
        quads.push(Quad::new(
            graph.clone(),
            prov::WAS_DERIVED_FROM,
            source.clone(),
            g,
        ));
    }
    quads
}

/// An IRI from a full IRI, `<IRI>` or a prefixed name of the project.
fn named(field: &'static str, value: &str) -> KbResult<NamedNode> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(KbError::MissingField { field });
    }
    let bare = trimmed
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(trimmed);
    NamedNode::new(expand(bare)).map_err(|e| KbError::BadIri {
        field,
        value: value.to_owned(),
        message: e.to_string(),
    })
}

/// A fact between two IRIs.
fn named_triple(subject: &str, predicate: &str, object: &str) -> KbResult<Triple> {
    Ok(Triple::new(
        named("subject", subject)?,
        named("predicate", predicate)?,
        named("object", object)?,
    ))
}

/// The class an `AddEntity` names: its IRI, a prefixed name, its local name or its kind name,
/// compared without case and punctuation ("failure mode" is `akg:FailureMode`).
fn entity_class(name: &str) -> KbResult<NamedNode> {
    let key = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = expand(name.trim());
    ENTITY_CLASSES
        .iter()
        .find(|(iri, kind)| {
            let local = iri.as_str().trim_start_matches(AKG);
            wanted == iri.as_str() || key(&wanted) == key(local) || key(&wanted) == key(kind)
        })
        .map(|(iri, _)| iri.into_owned())
        .ok_or_else(|| KbError::UnknownClass {
            class: name.to_owned(),
            known: ENTITY_CLASSES
                .iter()
                .map(|(iri, kind)| format!("{} ({kind})", compact(iri.as_str())))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A literal for a datatype property with range `range`: language-tagged English for
/// `rdf:langString`, typed for an XSD datatype, plain otherwise.
fn typed_literal(value: &str, range: Option<&NamedNode>) -> Literal {
    match range {
        Some(r) if r.as_ref() == rdf::LANG_STRING => {
            Literal::new_language_tagged_literal_unchecked(value, "en")
        }
        Some(r) if r.as_str().starts_with("http://www.w3.org/2001/XMLSchema#") => {
            Literal::new_typed_literal(value, r.clone())
        }
        _ => Literal::new_simple_literal(value),
    }
}

/// Refuses to change a fact of the ontology graph, or a provenance statement of a fact graph.
fn check_changeable(fact: TripleRef<'_>, graphs: &[NamedNode]) -> KbResult<()> {
    if graphs.iter().any(|g| g.as_ref() == ONTOLOGY_GRAPH) {
        return Err(KbError::OntologyAxiom { fact: show(fact) });
    }
    if let Some(graph) = graphs
        .iter()
        .find(|g| fact.subject == NamedOrBlankNodeRef::from(g.as_ref()))
    {
        return Err(KbError::ProvenanceStatement {
            fact: show(fact),
            graph: compact(graph.as_str()),
        });
    }
    Ok(())
}

/// Refuses an update's direct write into a graph it must not write.
fn check_writable(graph: NamedNodeRef<'_>) -> KbResult<()> {
    let why = if graph == INFERRED_GRAPH {
        "the RDFS entailments are recomputed by every commit"
    } else if is_system_graph(graph) {
        "the version log is written only by commits"
    } else if graph == ONTOLOGY_GRAPH {
        "the ontology changes only by loading its file"
    } else {
        return Ok(());
    };
    Err(KbError::ReservedGraph {
        graph: compact(graph.as_str()),
        why,
    })
}

/// `fact` as a quad of each of `graphs`.
fn in_graphs(fact: &Triple, graphs: &[NamedNode]) -> Vec<Quad> {
    graphs
        .iter()
        .map(|g| fact.as_ref().in_graph(g.as_ref()).into_owned())
        .collect()
}

/// A fact as people read it, with compacted IRIs.
fn show(fact: TripleRef<'_>) -> String {
    let term = |t: TermRef<'_>| match t {
        TermRef::NamedNode(n) => compact(n.as_str()),
        other => other.to_string(),
    };
    format!(
        "{} {} {}",
        term(fact.subject.into()),
        compact(fact.predicate.as_str()),
        term(fact.object)
    )
}

/// The entities a change touched: subjects and IRI objects of its facts (not of provenance
/// statements), in the namespace of KB individuals.
fn affected(prepared: &Prepared) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let entity = |t: TermRef<'_>| match t {
        TermRef::NamedNode(n) if n.as_str().starts_with(KB) && !n.as_str().starts_with(VERSION) => {
            Some(n.as_str().to_owned())
        }
        _ => None,
    };
    for quad in prepared.added.iter().chain(&prepared.removed) {
        let provenance = match (&quad.subject, &quad.graph_name) {
            (NamedOrBlankNode::NamedNode(s), GraphName::NamedNode(g)) => {
                s == g || s.as_str().starts_with(SOURCE)
            }
            _ => false,
        };
        if provenance {
            continue;
        }
        out.extend(entity(quad.subject.as_ref().into()));
        out.extend(entity(quad.object.as_ref()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_named_by_iri_prefixed_name_local_name_or_kind() {
        for name in [
            "https://w3id.org/assetkg/ontology#FailureMode",
            "akg:FailureMode",
            "FailureMode",
            "failure mode",
            "failure-mode",
        ] {
            assert_eq!(
                entity_class(name).map(|c| c.into_string()).ok().as_deref(),
                Some("https://w3id.org/assetkg/ontology#FailureMode"),
                "{name}"
            );
        }
        assert_eq!(
            entity_class("sensor")
                .map(|c| c.into_string())
                .ok()
                .as_deref(),
            Some("https://w3id.org/assetkg/ontology#Sensor")
        );
        let err = entity_class("akg:Gizmo").expect_err("unknown");
        assert!(err.to_string().contains("akg:Sensor (sensor)"), "{err}");
    }

    #[test]
    fn iris_are_full_bracketed_or_prefixed_and_errors_name_the_field() {
        let full = "https://w3id.org/assetkg/kb/sensor/vibration";
        for value in [
            full,
            "<https://w3id.org/assetkg/kb/sensor/vibration>",
            "sensor:vibration",
        ] {
            assert_eq!(
                named("object", value)
                    .map(NamedNode::into_string)
                    .ok()
                    .as_deref(),
                Some(full)
            );
        }
        let err = named("subject", "not an iri").expect_err("relative");
        assert!(err.to_string().starts_with("subject: "), "{err}");
        let err = named("predicate", "  ").expect_err("empty");
        assert_eq!(err.to_string(), "predicate: must not be empty");
    }

    #[test]
    fn datatype_values_follow_the_range() {
        let xsd_string = NamedNode::new_unchecked("http://www.w3.org/2001/XMLSchema#string");
        assert_eq!(
            typed_literal("VIB", Some(&xsd_string)),
            Literal::new_typed_literal("VIB", xsd_string.clone())
        );
        assert_eq!(
            typed_literal("text", Some(&rdf::LANG_STRING.into_owned())),
            Literal::new_language_tagged_literal_unchecked("text", "en")
        );
        assert_eq!(typed_literal("x", None), Literal::new_simple_literal("x"));
    }

    #[test]
    fn curation_graph_ids_sort_in_commit_order() {
        let t = DateTime::parse_from_rfc3339("2026-12-04T10:15:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let a = curation_graph(9, t);
        let b = curation_graph(10, t);
        assert_eq!(
            a.as_str(),
            "https://w3id.org/assetkg/graph/curation/000009-20261204T101500Z"
        );
        assert!(a.as_str() < b.as_str());
    }
}
