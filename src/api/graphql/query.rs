//! The query root: entities (one, or filtered pages with cursors), search, task-aware
//! recommendation with explanations, read-only SPARQL, and the KB version.

use super::entity::{load_entities, load_entity, Entity};
use super::{blocking, client_error, Services};
use crate::index::{resolve_asset, Hit, SearchMode, SearchRequest};
use crate::kb::{OutputFormat, QueryLimits};
use crate::retrieval::facts::{self, Fact, ListRequest};
use crate::retrieval::{recommend, RecommendRequest};
use crate::tasks::TaskCode;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Json, Object, Result, SimpleObject};
use base64::Engine;
use std::sync::Arc;

/// The kinds of entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum EntityKind {
    EquipmentCategory,
    EquipmentClass,
    EquipmentType,
    Subunit,
    MaintainableItem,
    ComponentKind,
    FailureModeClass,
    FailureMode,
    FailureDescription,
    Sensor,
}

impl EntityKind {
    /// The index's name of the kind.
    pub fn as_kind(self) -> &'static str {
        match self {
            Self::EquipmentCategory => "equipment_category",
            Self::EquipmentClass => "equipment_class",
            Self::EquipmentType => "equipment_type",
            Self::Subunit => "subunit",
            Self::MaintainableItem => "maintainable_item",
            Self::ComponentKind => "component_kind",
            Self::FailureModeClass => "failure_mode_class",
            Self::FailureMode => "failure_mode",
            Self::FailureDescription => "failure_description",
            Self::Sensor => "sensor",
        }
    }
}

/// How search matches the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::index::SearchMode")]
pub enum Mode {
    /// Nearest neighbours of the text's embedding.
    Vector,
    /// Full-text BM25.
    Lexical,
    /// Reciprocal rank fusion of both.
    Hybrid,
}

/// The nine tasks of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::tasks::TaskCode")]
#[allow(clippy::upper_case_acronyms)]
pub enum Task {
    /// Equipment category → equipment classes.
    E2CAT,
    /// Equipment class → equipment types.
    E2CLT,
    /// Equipment unit → maintainable items.
    ES2U,
    /// Failure description → failure-mode class.
    FM2CLS,
    /// Asset + failure-mode class → component kinds.
    FM2CMP,
    /// Component kind → failure modes.
    C2FM,
    /// Asset + failure mode → sensors.
    FM2S,
    /// Asset + sensor → failure modes.
    S2FM,
    /// Asset → sensors.
    A2S,
}

/// One search result.
pub struct SearchHit(Hit, Option<Entity>);

#[Object]
impl SearchHit {
    /// Higher is better; cosine similarity (vector), BM25 (lexical) or the fused reciprocal
    /// rank score (hybrid). Scores of different modes are not comparable.
    async fn score(&self) -> f32 {
        self.0.score
    }
    /// The entity.
    async fn entity(&self) -> Option<&Entity> {
        self.1.as_ref()
    }
    /// The entity IRI.
    async fn iri(&self) -> &str {
        &self.0.iri
    }
    /// Its label.
    async fn label(&self) -> &str {
        &self.0.label
    }
    /// Its kind.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The text that was embedded and indexed.
    async fn text(&self) -> &str {
        &self.0.text
    }
    /// The equipment classes (IRIs) it belongs to.
    async fn assets(&self) -> &[String] {
        &self.0.assets
    }
    /// `vetted` or `proposed`.
    async fn vetting_status(&self) -> &str {
        &self.0.vetting_status
    }
}

/// An entity the query was understood to name.
#[derive(SimpleObject)]
pub struct QueryEntity {
    /// Its role in the task (`Fault`, `Asset`, …).
    role: String,
    /// How it was found: `iri`, `asset` or `search`.
    resolved_by: String,
    /// The entity.
    entity: Option<Entity>,
}

/// A graph path: one or two facts.
#[derive(SimpleObject)]
pub struct FactPath {
    /// The facts, from a query entity to the item.
    facts: Vec<Fact>,
}

/// Why an item is recommended.
#[derive(SimpleObject)]
pub struct Explanation {
    /// Graph paths (facts with provenance) from the query's entities to the item.
    paths: Vec<FactPath>,
    /// True when no graph path links them: only the embedding does.
    semantic_only: bool,
    /// One line for people ("semantic match only" when there is no path).
    summary: String,
}

/// One recommended item.
#[derive(SimpleObject)]
pub struct RecommendedItem {
    /// The item.
    entity: Option<Entity>,
    /// Fused score (reciprocal rank fusion of the semantic and the graph ranking).
    score: f32,
    /// Cosine similarity of query and item, when the item was a semantic hit.
    semantic_score: Option<f32>,
    /// True when the task's graph query links the query's entities to the item.
    graph_linked: bool,
    /// Why.
    explanation: Explanation,
}

/// A recommendation.
#[derive(SimpleObject)]
pub struct Recommendation {
    /// The task.
    task: Task,
    /// What the query was resolved to.
    query_entities: Vec<QueryEntity>,
    /// Ranked items.
    items: Vec<RecommendedItem>,
}

/// One committed version of the KB.
#[derive(SimpleObject)]
pub struct KbVersion {
    /// Sequence number (1 for the first commit).
    sequence: u64,
    /// The version id: `sha256:` of the canonical asserted facts.
    id: String,
    /// When it was committed.
    time: String,
    /// Who committed it.
    agent: String,
    /// What was done (`load`, `propose`, `assert`, …).
    action: String,
    /// Why.
    reason: String,
    /// Quads added.
    added: u64,
    /// Quads removed.
    removed: u64,
}

/// The query root.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// One entity by IRI or prefixed name (`sensor:vibration`).
    async fn entity(&self, ctx: &Context<'_>, iri: String) -> Result<Option<Entity>> {
        load_entity(ctx, &iri).await
    }

    /// Entities in IRI order, filtered, a page at a time (`first` ≤ 100; `after` is the
    /// `endCursor` of the previous page).
    #[allow(clippy::too_many_arguments)]
    async fn entities(
        &self,
        ctx: &Context<'_>,
        kind: Option<EntityKind>,
        #[graphql(desc = "Only entities of this equipment class (IRI, prefixed name or label).")]
        asset: Option<String>,
        #[graphql(desc = "Only entities whose label or a synonym contains this text.")]
        label_contains: Option<String>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Entity>> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        if !(1..=100).contains(&first) {
            return Err(client_error(
                "BAD_REQUEST",
                "first must be between 1 and 100",
            ));
        }
        let after = after.map(|cursor| decode_cursor(&cursor)).transpose()?;
        let assets_of = match asset {
            Some(name) => Some(services.members_of(&resolve(&services, name).await?)),
            None => None,
        };
        let request = ListRequest {
            kind: kind.map(|k| k.as_kind().to_owned()),
            assets_of,
            label_contains,
            after: after.clone(),
            first: first as usize,
        };
        let kb_services = services.clone();
        let (iris, more) =
            blocking(move || facts::list_entities(&kb_services.kb, &request)).await?;
        let entities = load_entities(ctx, iris.clone()).await?;
        let mut connection = Connection::new(after.is_some(), more);
        for entity in entities {
            let cursor = encode_cursor(&entity.summary().iri);
            connection.edges.push(Edge::new(cursor, entity));
        }
        Ok(connection)
    }

    /// Searches the entity index. `asset` (IRI, prefixed name or label) keeps only entities
    /// of that equipment class; `kinds` only those kinds.
    async fn search(
        &self,
        ctx: &Context<'_>,
        text: String,
        #[graphql(default)] kinds: Vec<EntityKind>,
        asset: Option<String>,
        #[graphql(default_with = "Mode::Hybrid")] mode: Mode,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<SearchHit>> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        let limit = checked_limit(&services, limit)?;
        let mut request = SearchRequest::new(text)
            .mode(SearchMode::from(mode))
            .kinds(kinds.iter().map(|k| k.as_kind()))
            .limit(limit);
        if let Some(name) = asset {
            request = request.asset(resolve(&services, name).await?);
        }
        request
            .validate()
            .map_err(|e| client_error("BAD_REQUEST", e))?;
        let vector = match request.mode {
            SearchMode::Lexical => None,
            _ => Some(services.embed_query(request.text.clone()).await?),
        };
        let hits = services
            .index
            .search_embedded(&request, vector.as_ref())
            .await
            .map_err(super::index_error)?;
        // The entities are read from the store only when the client asked for them: a search
        // that selects scores and labels is answered from the index alone.
        let entities = if ctx.look_ahead().field("entity").exists() {
            load_entities(ctx, hits.iter().map(|h| h.iri.clone()).collect()).await?
        } else {
            Vec::new()
        };
        Ok(hits
            .into_iter()
            .map(|hit| {
                let entity = entities
                    .iter()
                    .find(|e| e.summary().iri == hit.iri)
                    .cloned();
                SearchHit(hit, entity)
            })
            .collect())
    }

    /// Asks the ReAct agent: an open question, or a multiple-choice one with 2–5 options. The
    /// answer carries the entities and graph facts (with provenance and vetting status) it rests
    /// on and the full trace. The agent only reads: nothing a question says changes the graph.
    async fn ask(
        &self,
        ctx: &Context<'_>,
        question: String,
        #[graphql(default)] options: Vec<String>,
    ) -> Result<super::agent::AgentAnswer> {
        super::agent::ask(ctx, question, options).await
    }

    /// Items for a query under one of the nine tasks (e.g. FM2S: the sensors for a failure
    /// mode on an asset), each with its score and explanation: the graph paths that link the
    /// query's entities to it, or "semantic match only".
    async fn recommend(
        &self,
        ctx: &Context<'_>,
        task: Task,
        #[graphql(desc = "Free text naming the query entity, or its IRI / prefixed name.")]
        query: String,
        #[graphql(
            desc = "The equipment class the question is about (IRI, prefixed name or label)."
        )]
        asset: Option<String>,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Recommendation> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        let limit = checked_limit(&services, limit)?;
        let asset = match asset {
            Some(name) => Some(resolve(&services, name).await?),
            None => None,
        };
        let request = RecommendRequest {
            task: TaskCode::from(task),
            query,
            asset,
            limit,
        };
        let result = recommend(&services.kb, &services.index, &services.embedder, &request)
            .await
            .map_err(super::retrieval_error)?;
        let mut iris: Vec<String> = result.items.iter().map(|i| i.item.iri.clone()).collect();
        iris.extend(result.query_entities.iter().map(|q| q.iri.clone()));
        let entities = load_entities(ctx, iris).await?;
        let find = |iri: &str| entities.iter().find(|e| e.summary().iri == iri).cloned();
        Ok(Recommendation {
            task,
            query_entities: result
                .query_entities
                .iter()
                .map(|q| QueryEntity {
                    role: q.role.clone(),
                    resolved_by: q.resolved_by.clone(),
                    entity: find(&q.iri),
                })
                .collect(),
            items: result
                .items
                .into_iter()
                .map(|item| RecommendedItem {
                    entity: find(&item.item.iri),
                    score: item.score,
                    semantic_score: item.semantic_score,
                    graph_linked: item.graph_linked,
                    explanation: Explanation {
                        paths: item
                            .explanation
                            .paths
                            .into_iter()
                            .map(|facts| FactPath { facts })
                            .collect(),
                        semantic_only: item.explanation.semantic_only,
                        summary: item.explanation.summary,
                    },
                })
                .collect(),
        })
    }

    /// A read-only SPARQL query (project prefixes predeclared); the result in the SPARQL 1.1
    /// Query Results JSON format, or N-Triples text for CONSTRUCT and DESCRIBE.
    async fn sparql(&self, ctx: &Context<'_>, query: String) -> Result<Json<serde_json::Value>> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        let outcome = services.run_sparql(query).await.map_err(super::kb_error)?;
        let format = match outcome {
            crate::kb::QueryOutcome::Graph(_) => OutputFormat::Ntriples,
            _ => OutputFormat::Json,
        };
        let mut out = Vec::new();
        outcome.write(format, &mut out).map_err(super::kb_error)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        Ok(Json(if format == OutputFormat::Json {
            serde_json::from_str(&text).map_err(super::internal)?
        } else {
            serde_json::Value::String(text)
        }))
    }

    /// The current KB version id (`sha256:` of the canonical asserted facts).
    async fn kb_version(&self, ctx: &Context<'_>) -> Result<String> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        blocking(move || services.kb.current_version()).await
    }

    /// Every committed version, oldest first (`last` keeps the newest ones).
    async fn kb_versions(&self, ctx: &Context<'_>, last: Option<i32>) -> Result<Vec<KbVersion>> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        let records = blocking(move || services.kb.versions()).await?;
        let skip = match last {
            Some(n) if n >= 0 => records.len().saturating_sub(n as usize),
            _ => 0,
        };
        Ok(records
            .into_iter()
            .skip(skip)
            .map(|r| KbVersion {
                sequence: r.seq,
                id: r.id,
                time: r.time,
                agent: r.agent_label,
                action: r.action,
                reason: r.reason,
                added: r.added as u64,
                removed: r.removed as u64,
            })
            .collect())
    }

    /// The changes between two versions (ids or sequence numbers) as an RDF Patch (`A`/`D`
    /// lines of N-Quads).
    async fn kb_diff(&self, ctx: &Context<'_>, from: String, to: String) -> Result<String> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        blocking(move || Ok(services.kb.diff(&from, &to)?.to_rdf_patch())).await
    }
}

fn checked_limit(services: &Services, limit: i32) -> Result<usize> {
    let max = services.config.limits.max_limit;
    if limit < 1 || limit as usize > max {
        return Err(client_error(
            "BAD_REQUEST",
            format!("limit must be between 1 and {max}"),
        ));
    }
    Ok(limit as usize)
}

/// The IRI of the equipment class `name` (IRI, prefixed name, label or synonym).
async fn resolve(services: &Arc<Services>, name: String) -> Result<String> {
    let services = services.clone();
    let wanted = name.clone();
    blocking(move || resolve_asset(&services.kb, &wanted))
        .await?
        .ok_or_else(|| {
            client_error(
                "NOT_FOUND",
                format!("no equipment class is called {name:?}"),
            )
        })
}

fn encode_cursor(iri: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(iri)
}

fn decode_cursor(cursor: &str) -> Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| client_error("BAD_REQUEST", format!("malformed cursor {cursor:?}")))
}

/// The limits a SPARQL query runs under, from the service's configuration.
pub fn sparql_limits(services: &Services) -> QueryLimits {
    QueryLimits {
        cancel: oxigraph::sparql::CancellationToken::new(),
        timeout: services.config.limits.sparql_timeout(),
        max_results: services.config.limits.sparql_max_results,
    }
}
