//! The mutation root: curation edits (curator role). Each edit is one KB transaction, checked by
//! the SHACL shapes before it commits and recorded with who, when and why; the index is then
//! brought in line, which embeds again exactly the entities whose documents changed.

use super::{blocking, client_error, Services};
use crate::api::auth::Principal;
use crate::api::config::Role;
use crate::kb::{Edit, EditRequest};
use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use std::sync::Arc;

/// A fact between two entities.
#[derive(InputObject)]
pub struct FactInput {
    /// Subject IRI or prefixed name.
    subject: String,
    /// Predicate: an object property of the ontology (`akg:detectableBy`).
    predicate: String,
    /// Object IRI or prefixed name.
    object: String,
    /// Why (recorded with the edit).
    reason: String,
}

/// A relation of a new entity.
#[derive(InputObject)]
pub struct RelationInput {
    /// Predicate (`akg:inCategory`).
    predicate: String,
    /// Object IRI or prefixed name.
    object: String,
}

/// A new entity.
#[derive(InputObject)]
pub struct EntityInput {
    /// Its IRI or prefixed name (`sensor:oil-particle-count`).
    iri: String,
    /// Its class: an ontology class (`akg:Sensor`) or a kind (`sensor`).
    class: String,
    /// English label.
    label: String,
    /// English definition.
    definition: String,
    /// English synonyms.
    #[graphql(default)]
    alt_labels: Vec<String>,
    /// Its relations to existing entities.
    #[graphql(default)]
    relations: Vec<RelationInput>,
    /// Why (recorded with the edit).
    reason: String,
}

/// What an edit did.
#[derive(SimpleObject)]
pub struct EditResult {
    /// The KB version after the edit.
    kb_version: String,
    /// The version before it.
    previous_version: String,
    /// Its sequence number in the version log.
    sequence: u64,
    /// The curation fact graph written, if any.
    graph: Option<String>,
    /// Quads added.
    added: u64,
    /// Quads removed.
    removed: u64,
    /// Entities whose facts changed.
    affected: Vec<String>,
    /// Index rows embedded again (or added, or removed) to match.
    reembedded: u64,
}

/// The mutation root.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Adds an entity with its label, definition, synonyms and relations (vetted: a curator
    /// asserts it).
    async fn add_entity(&self, ctx: &Context<'_>, input: EntityInput) -> Result<EditResult> {
        let edit = Edit::AddEntity {
            iri: input.iri,
            class: input.class,
            label: input.label,
            definition: input.definition,
            alt_labels: input.alt_labels,
            relations: input
                .relations
                .into_iter()
                .map(|r| (r.predicate, r.object))
                .collect(),
        };
        apply(ctx, edit, input.reason).await
    }

    /// Proposes a fact for expert review (status proposed).
    async fn propose_relation(&self, ctx: &Context<'_>, fact: FactInput) -> Result<EditResult> {
        let (edit, reason) = relation(fact, |subject, predicate, object| Edit::ProposeRelation {
            subject,
            predicate,
            object,
        });
        apply(ctx, edit, reason).await
    }

    /// Asserts a fact (status vetted).
    async fn assert_relation(&self, ctx: &Context<'_>, fact: FactInput) -> Result<EditResult> {
        let (edit, reason) = relation(fact, |subject, predicate, object| Edit::AssertRelation {
            subject,
            predicate,
            object,
        });
        apply(ctx, edit, reason).await
    }

    /// Retracts a fact from every fact graph that states it.
    async fn retract_relation(&self, ctx: &Context<'_>, fact: FactInput) -> Result<EditResult> {
        let (edit, reason) = relation(fact, |subject, predicate, object| Edit::RetractRelation {
            subject,
            predicate,
            object,
        });
        apply(ctx, edit, reason).await
    }

    /// Vets a proposed fact.
    async fn vet_fact(&self, ctx: &Context<'_>, fact: FactInput) -> Result<EditResult> {
        let (edit, reason) = relation(fact, |subject, predicate, object| Edit::Vet {
            subject,
            predicate,
            object,
        });
        apply(ctx, edit, reason).await
    }

    /// Rejects a proposed fact (it is removed; the rejection stays in the version log).
    async fn reject_fact(&self, ctx: &Context<'_>, fact: FactInput) -> Result<EditResult> {
        let (edit, reason) = relation(fact, |subject, predicate, object| Edit::Reject {
            subject,
            predicate,
            object,
        });
        apply(ctx, edit, reason).await
    }

    /// Re-synchronises the whole index with the KB (admin).
    async fn reindex(&self, ctx: &Context<'_>) -> Result<u64> {
        let principal = ctx.data::<Principal>()?;
        require(principal, Role::Admin)?;
        let services = ctx.data::<Arc<Services>>()?.clone();
        let _guard = services.write.lock().await;
        services.refresh_index().await
    }
}

fn relation(fact: FactInput, make: impl FnOnce(String, String, String) -> Edit) -> (Edit, String) {
    (make(fact.subject, fact.predicate, fact.object), fact.reason)
}

/// Fails unless the caller has `role`.
pub fn require(principal: &Principal, role: Role) -> Result<()> {
    if principal.has(role) {
        Ok(())
    } else if principal.role.is_none() {
        Err(client_error(
            "UNAUTHENTICATED",
            format!("this needs the {role} role: send a bearer token"),
        ))
    } else {
        Err(client_error(
            "FORBIDDEN",
            format!("{} has no {role} role", principal.name),
        ))
    }
}

async fn apply(ctx: &Context<'_>, edit: Edit, reason: String) -> Result<EditResult> {
    let principal = ctx.data::<Principal>()?.clone();
    require(&principal, Role::Curator)?;
    if reason.trim().is_empty() {
        return Err(client_error("BAD_REQUEST", "reason is empty: say why"));
    }
    let services = ctx.data::<Arc<Services>>()?.clone();
    // One writer at a time, so that the index follows the KB edit by edit.
    let _guard = services.write.lock().await;
    let request = EditRequest {
        edit,
        agent: principal.name.clone(),
        reason,
    };
    let kb_services = services.clone();
    let outcome = blocking(move || kb_services.kb.apply_edit(&request)).await?;
    let reembedded = services.refresh_index().await?;
    services.metrics.edit(reembedded);
    Ok(EditResult {
        kb_version: outcome.version.id.clone(),
        previous_version: outcome.previous_version,
        sequence: outcome.version.seq,
        graph: outcome.graph,
        added: outcome.added as u64,
        removed: outcome.removed as u64,
        affected: outcome.affected.into_iter().collect(),
        reembedded,
    })
}
