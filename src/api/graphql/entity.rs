//! The entity types of the schema: one GraphQL type per kind of KB entity, all implementing the
//! `Entity` interface, with their typed relations in both directions (e.g. `FailureMode.sensors`
//! and `Sensor.failureModes` read the same `akg:detectableBy` facts), each relation carrying the
//! provenance and vetting status of its fact.

use super::{blocking, Services};
use crate::retrieval::facts::{self, Direction, EntitySummary, Fact, Provenance, Relation};
use crate::vocab::AKG;
use async_graphql::{Context, Interface, Object, Result};
use std::sync::Arc;

/// A link from an entity to another one, with the fact behind it.
pub struct RelationEdge {
    relation: Relation,
    other: Option<EntitySummary>,
}

#[Object]
impl RelationEdge {
    /// The predicate IRI (`https://w3id.org/assetkg/ontology#detectableBy`).
    async fn predicate(&self) -> &str {
        &self.relation.fact.predicate
    }

    /// Which way the fact points from the entity this relation was read from.
    async fn direction(&self) -> Direction {
        self.relation.direction
    }

    /// The entity at the other end.
    async fn entity(&self) -> Option<Entity> {
        self.other.clone().map(Entity::from)
    }

    /// `vetted` when a vetted fact graph states the fact, `proposed` otherwise, `inferred` when
    /// only the RDFS reasoner does.
    async fn vetting_status(&self) -> &str {
        &self.relation.fact.vetting_status
    }

    /// The fact graphs that state the fact, with their source, status and time.
    async fn provenance(&self) -> &[Provenance] {
        &self.relation.fact.provenance
    }

    /// The fact itself (subject, predicate, object and provenance).
    async fn fact(&self) -> &Fact {
        &self.relation.fact
    }
}

/// The relations of `iri`, with the entities at their other ends loaded in one query.
pub async fn relation_edges(
    ctx: &Context<'_>,
    iri: &str,
    predicate: Option<String>,
    direction: Option<Direction>,
) -> Result<Vec<RelationEdge>> {
    let services = ctx.data::<Arc<Services>>()?.clone();
    let iri = iri.to_owned();
    let predicate = predicate.map(|p| crate::vocab::expand(&p));
    blocking(move || {
        let headers = services.graph_headers()?;
        let relations = facts::relations(
            &services.kb,
            &headers,
            &iri,
            predicate.as_deref(),
            direction,
        )?;
        let others: Vec<String> = relations.iter().map(|r| r.other.clone()).collect();
        let summaries = facts::entity_summaries(&services.kb, &others)?;
        Ok(relations
            .into_iter()
            .map(|relation| RelationEdge {
                other: summaries.get(&relation.other).cloned(),
                relation,
            })
            .collect::<Vec<_>>())
    })
    .await
}

/// Generates, for each kind of entity, its GraphQL type with the common fields of the
/// `Entity` interface and its typed relations `field => (akg local name, direction)`.
macro_rules! entity_types {
    ($(
        $(#[$doc:meta])*
        $name:ident ($kind:literal) {
            $( $(#[$fdoc:meta])* $field:ident => ($predicate:literal, $direction:ident) ),* $(,)?
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone)]
            pub struct $name(pub EntitySummary);

            #[Object]
            impl $name {
                /// The entity IRI.
                async fn iri(&self, _ctx: &Context<'_>) -> Result<&str> {
                    Ok(&self.0.iri)
                }
                /// Its kind (`sensor`, `failure_mode`, …).
                async fn kind(&self, _ctx: &Context<'_>) -> Result<&str> {
                    Ok(&self.0.kind)
                }
                /// `skos:prefLabel`.
                async fn label(&self, _ctx: &Context<'_>) -> Result<&str> {
                    Ok(&self.0.label)
                }
                /// `skos:definition`.
                async fn definition(&self, _ctx: &Context<'_>) -> Result<Option<&str>> {
                    Ok(self.0.definition.as_deref())
                }
                /// Synonyms (`skos:altLabel`), sorted.
                async fn alt_labels(&self, _ctx: &Context<'_>) -> Result<&[String]> {
                    Ok(&self.0.alt_labels)
                }
                /// Every relation to another entity, optionally one predicate (IRI or
                /// prefixed name such as `akg:detectableBy`) and one direction.
                async fn relations(
                    &self,
                    ctx: &Context<'_>,
                    predicate: Option<String>,
                    direction: Option<Direction>,
                ) -> Result<Vec<RelationEdge>> {
                    relation_edges(ctx, &self.0.iri, predicate, direction).await
                }
                $(
                    $(#[$fdoc])*
                    async fn $field(&self, ctx: &Context<'_>) -> Result<Vec<RelationEdge>> {
                        relation_edges(
                            ctx,
                            &self.0.iri,
                            Some(format!("{AKG}{}", $predicate)),
                            Some(Direction::$direction),
                        )
                        .await
                    }
                )*
            }
        )*

        /// An entity of the knowledge base.
        #[derive(Clone, Interface)]
        #[graphql(
            field(name = "iri", ty = "&str", desc = "The entity IRI."),
            field(name = "kind", ty = "&str", desc = "Its kind (`sensor`, `failure_mode`, …)."),
            field(name = "label", ty = "&str", desc = "`skos:prefLabel`."),
            field(name = "definition", ty = "Option<&str>", desc = "`skos:definition`."),
            field(name = "alt_labels", ty = "&[String]", desc = "Synonyms (`skos:altLabel`)."),
            field(
                name = "relations",
                ty = "Vec<RelationEdge>",
                desc = "Every relation to another entity, optionally one predicate and one direction.",
                arg(name = "predicate", ty = "Option<String>"),
                arg(name = "direction", ty = "Option<Direction>")
            )
        )]
        pub enum Entity {
            $( $name($name), )*
        }

        impl Entity {
            /// What the entity is.
            pub fn summary(&self) -> &EntitySummary {
                match self {
                    $( Entity::$name(e) => &e.0, )*
                }
            }
        }

        impl From<EntitySummary> for Entity {
            fn from(summary: EntitySummary) -> Self {
                match summary.kind.as_str() {
                    $( $kind => Entity::$name($name(summary)), )*
                    // Every kind of the index has a type above; a summary is only made for those.
                    _ => Entity::Sensor(Sensor(summary)),
                }
            }
        }
    };
}

entity_types! {
    /// A top-level group of equipment (rotating, electrical, …).
    EquipmentCategory("equipment_category") {
        /// Its equipment classes (`akg:inCategory`, incoming).
        equipment_classes => ("inCategory", Incoming),
    }
    /// An equipment class: the assets (pump, electric motor, …).
    EquipmentClass("equipment_class") {
        /// Its category (`akg:inCategory`).
        category => ("inCategory", Outgoing),
        /// Its equipment types (`akg:typeOf`, incoming).
        types => ("typeOf", Incoming),
        /// Its subunits (`akg:subunitOf`, incoming).
        subunits => ("subunitOf", Incoming),
        /// Sensors monitored on it (`akg:hasMonitoredProperty`).
        sensors => ("hasMonitoredProperty", Outgoing),
        /// Failure modes it can suffer (`akg:hasFailureMode`).
        failure_modes => ("hasFailureMode", Outgoing),
        /// Failure-mode classes recorded for it (`akg:appliesTo`, incoming).
        failure_mode_classes => ("appliesTo", Incoming),
    }
    /// A variant of an equipment class.
    EquipmentType("equipment_type") {
        /// The class it is a type of (`akg:typeOf`).
        equipment_class => ("typeOf", Outgoing),
    }
    /// A subunit of an equipment class.
    Subunit("subunit") {
        /// The class whose unit it belongs to (`akg:subunitOf`).
        equipment_class => ("subunitOf", Outgoing),
        /// Its maintainable items (`akg:partOf`, incoming).
        items => ("partOf", Incoming),
    }
    /// A maintainable item (component) of a subunit.
    MaintainableItem("maintainable_item") {
        /// Its subunit (`akg:partOf`).
        subunit => ("partOf", Outgoing),
        /// Which kind of component it is (`akg:componentKind`).
        component_kind => ("componentKind", Outgoing),
        /// Failure-mode classes its failures are recorded under (`akg:susceptibleTo`).
        failure_mode_classes => ("susceptibleTo", Outgoing),
    }
    /// A generic kind of component (bearing, seal, …).
    ComponentKind("component_kind") {
        /// Maintainable items of this kind (`akg:componentKind`, incoming).
        items => ("componentKind", Incoming),
        /// Failure modes it can suffer (`akg:hasFailureMode`).
        failure_modes => ("hasFailureMode", Outgoing),
    }
    /// An ISO 14224-style failure-mode class with its code.
    FailureModeClass("failure_mode_class") {
        /// Equipment classes it is recorded for (`akg:appliesTo`).
        equipment_classes => ("appliesTo", Outgoing),
        /// Failure modes in it (`akg:inFailureModeClass`, incoming).
        failure_modes => ("inFailureModeClass", Incoming),
        /// Failure descriptions recorded under it (`akg:indicatesFailureModeClass`, incoming).
        descriptions => ("indicatesFailureModeClass", Incoming),
        /// Maintainable items susceptible to it (`akg:susceptibleTo`, incoming).
        susceptible_items => ("susceptibleTo", Incoming),
    }
    /// A failure mode (bearing wear, cavitation, …).
    FailureMode("failure_mode") {
        /// Its failure-mode classes (`akg:inFailureModeClass`).
        failure_mode_classes => ("inFailureModeClass", Outgoing),
        /// Sensors an expert judged relevant on some asset (`akg:detectableBy`).
        sensors => ("detectableBy", Outgoing),
        /// Component kinds and equipment classes that can suffer it (`akg:hasFailureMode`,
        /// incoming).
        affected => ("hasFailureMode", Incoming),
    }
    /// A reported failure description.
    FailureDescription("failure_description") {
        /// The failure-mode class it is recorded under (`akg:indicatesFailureModeClass`).
        failure_mode_class => ("indicatesFailureModeClass", Outgoing),
    }
    /// A sensor: a measured quantity or inspection technique.
    Sensor("sensor") {
        /// Failure modes it helps detect (`akg:detectableBy`, incoming).
        failure_modes => ("detectableBy", Incoming),
        /// Equipment classes it is monitored on (`akg:hasMonitoredProperty`, incoming).
        equipment_classes => ("hasMonitoredProperty", Incoming),
    }
}

/// The entity `iri` (IRI or prefixed name), `None` when the KB has no such entity.
pub async fn load_entity(ctx: &Context<'_>, iri: &str) -> Result<Option<Entity>> {
    let services = ctx.data::<Arc<Services>>()?.clone();
    let iri = crate::vocab::expand(iri.trim());
    blocking(move || Ok(facts::entity_summary(&services.kb, &iri)?.map(Entity::from))).await
}

/// Entities for `iris`, in that order, skipping unknown ones.
pub async fn load_entities(ctx: &Context<'_>, iris: Vec<String>) -> Result<Vec<Entity>> {
    let services = ctx.data::<Arc<Services>>()?.clone();
    blocking(move || {
        let mut summaries = facts::entity_summaries(&services.kb, &iris)?;
        Ok(iris
            .iter()
            .filter_map(|i| summaries.remove(i))
            .map(Entity::from)
            .collect::<Vec<_>>())
    })
    .await
}
