//! Task-aware recommendation: for one of the nine tasks, the query text is resolved to the KB
//! entities it names, items are ranked by the embedding model (the task's instruction, as the
//! model was trained) and by the graph (the items the task's own SPARQL links to those
//! entities), the two rankings are fused, and each item carries its explanation: the graph
//! paths, with provenance, from the query's entities to it — or "semantic match only".

use super::facts::{self, FactPath, GraphHeaders};
use super::RetrievalError;
use crate::embed::Embedder;
use crate::index::documents::{iri, select, value};
use crate::index::{
    embed_query, reciprocal_rank_fusion, EntityIndex, Hit, QueryVector, SearchMode, SearchRequest,
};
use crate::kb::{KbResult, KnowledgeBase};
use crate::tasks::TaskCode;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One recommendation request.
#[derive(Debug, Clone)]
pub struct RecommendRequest {
    /// The task (FM2S: failure mode → sensors, …).
    pub task: TaskCode,
    /// The query: free text naming the query entity, or its IRI / prefixed name.
    pub query: String,
    /// The equipment class (IRI) the question is about, for tasks that have one.
    pub asset: Option<String>,
    /// Maximum number of items.
    pub limit: usize,
}

/// What the query was understood to name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryEntity {
    /// The role in the task (`Fault`, `Asset`, …).
    pub role: String,
    /// The entity IRI.
    pub iri: String,
    /// Its label.
    pub label: String,
    /// How it was found: `iri`, `asset` (the request's asset) or `search`.
    pub resolved_by: String,
}

/// Why an item is recommended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Graph paths (one or two facts each, with provenance) from a query entity to the item.
    pub paths: Vec<FactPath>,
    /// True when no graph path links them: only the embedding does.
    pub semantic_only: bool,
    /// The explanation in one line for people.
    pub summary: String,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The item as the index holds it.
    pub item: Hit,
    /// The fused score (reciprocal rank fusion of the semantic and graph rankings).
    pub score: f32,
    /// Cosine similarity of the query and the item, when the item was among the semantic hits.
    pub semantic_score: Option<f32>,
    /// True when the task's graph query links the query entities to the item.
    pub graph_linked: bool,
    /// Why.
    pub explanation: Explanation,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendations {
    /// The task.
    pub task: TaskCode,
    /// The entities the query was resolved to.
    pub query_entities: Vec<QueryEntity>,
    /// Ranked items.
    pub items: Vec<Recommendation>,
}

/// Maximum number of paths listed per item.
const MAX_PATHS: usize = 3;

/// The kind of entity each role variable of the task SPARQL binds, and the kind of the items.
pub fn role_kind(task: TaskCode, var: &str) -> &'static str {
    match (task, var) {
        (_, "asset") => "equipment_class",
        (_, "category") => "equipment_category",
        (TaskCode::FM2CMP, "class") => "failure_mode_class",
        (_, "class") => "equipment_class",
        (_, "description") => "failure_description",
        (_, "component") => "component_kind",
        (_, "fault") => "failure_mode",
        (_, "sensor") => "sensor",
        _ => "equipment_class",
    }
}

/// The kind of the items of `task`.
pub fn item_kind(task: TaskCode) -> &'static str {
    match task {
        TaskCode::E2CAT => "equipment_class",
        TaskCode::E2CLT => "equipment_type",
        TaskCode::ES2U => "maintainable_item",
        TaskCode::FM2CLS => "failure_mode_class",
        TaskCode::FM2CMP => "component_kind",
        TaskCode::C2FM | TaskCode::S2FM => "failure_mode",
        TaskCode::FM2S | TaskCode::A2S => "sensor",
    }
}

/// Embeds `text` on the blocking pool.
async fn embed(embedder: &Arc<dyn Embedder>, text: String) -> Result<QueryVector, RetrievalError> {
    let embedder = embedder.clone();
    tokio::task::spawn_blocking(move || {
        Ok(QueryVector {
            model_id: embedder.model_id().to_owned(),
            vector: embed_query(embedder.as_ref(), &text)?,
        })
    })
    .await
    .map_err(|e| RetrievalError::Request(format!("embedding task failed: {e}")))?
}

/// Runs synchronous store work on the blocking pool.
async fn on_kb<T: Send + 'static>(
    kb: &Arc<KnowledgeBase>,
    work: impl FnOnce(&KnowledgeBase) -> Result<T, RetrievalError> + Send + 'static,
) -> Result<T, RetrievalError> {
    let kb = kb.clone();
    tokio::task::spawn_blocking(move || work(&kb))
        .await
        .map_err(|e| RetrievalError::Request(format!("store task failed: {e}")))?
}

/// Runs `request` against the KB and the index (`embedder` must be the index's model). Store
/// reads and embeddings run on the blocking pool.
pub async fn recommend(
    kb: &Arc<KnowledgeBase>,
    index: &EntityIndex,
    embedder: &Arc<dyn Embedder>,
    request: &RecommendRequest,
) -> Result<Recommendations, RetrievalError> {
    if request.query.trim().is_empty() {
        return Err(RetrievalError::Request("the query is empty".into()));
    }
    let spec = request.task.spec();
    let limit = request.limit.clamp(1, 100);

    // 1. The query's entities, one per role.
    let mut query_entities = Vec::new();
    for role in spec.roles {
        let kind = role_kind(request.task, role.var);
        let asset = request.asset.clone();
        let query = request.query.clone();
        let (from_asset, direct) = on_kb(kb, move |kb| {
            let from_asset = match asset {
                Some(asset) => summary_of(kb, &asset)?.map(|label| (asset, label)),
                None => None,
            };
            Ok((from_asset, direct_iri(kb, &query, kind)?))
        })
        .await?;
        let resolved = if role.var == "asset" && request.asset.is_some() {
            from_asset.map(|(asset, label)| (asset, label, "asset"))
        } else if let Some((iri_, label)) = direct {
            Some((iri_, label, "iri"))
        } else if spec.roles.len() > 1 && role.var == "asset" {
            // The asset of a two-role task comes from the request, never from the text:
            // the text names the other entity.
            None
        } else {
            // With an asset, the entity is first looked for among the asset's own (its
            // failure modes, sensors…), then anywhere.
            let vector = embed(embedder, request.query.clone()).await?;
            let base = SearchRequest::new(request.query.clone())
                .mode(SearchMode::Hybrid)
                .kinds([kind])
                .limit(1);
            let mut hits = Vec::new();
            if let Some(asset) = &request.asset {
                hits = index
                    .search_embedded(&base.clone().asset(asset.clone()), Some(&vector))
                    .await?;
            }
            if hits.is_empty() {
                hits = index.search_embedded(&base, Some(&vector)).await?;
            }
            hits.into_iter().next().map(|h| (h.iri, h.label, "search"))
        };
        if let Some((iri_, label, how)) = resolved {
            query_entities.push((
                role.var,
                QueryEntity {
                    role: role.name.to_owned(),
                    iri: iri_,
                    label,
                    resolved_by: how.to_owned(),
                },
            ));
        }
    }

    // 2. The items the task's graph query links to them.
    let linked: BTreeSet<String> = if query_entities.is_empty() {
        BTreeSet::new()
    } else {
        let values: String = query_entities
            .iter()
            .map(|(var, e)| format!("VALUES ?{var} {{ <{}> }}\n", e.iri))
            .collect();
        let body = spec
            .sparql
            .replacen("WHERE {", &format!("WHERE {{\n{values}"), 1);
        let relevant_col = body.contains("?relevant");
        let item_col = spec.roles.len();
        let rows = on_kb(kb, move |kb| Ok(select(kb, &body)?)).await?;
        rows.iter()
            .filter(|row| !relevant_col || row.last().and_then(value).is_none_or(|v| v == "true"))
            .filter_map(|row| {
                // ?item is the column after the roles.
                iri(&row[item_col])
            })
            .collect()
    };

    // 3. The semantic ranking, with the task's instruction (the model's training format).
    let instruction = spec.instructions().first().copied().unwrap_or_default();
    let query_part: Vec<String> = spec
        .roles
        .iter()
        .map(|role| {
            let named = query_entities
                .iter()
                .find(|(var, _)| *var == role.var)
                .map(|(_, e)| e.label.clone());
            match named {
                Some(label) if role.var == "asset" || query_entities.len() > 1 => {
                    format!("{}: {label}", role.name)
                }
                _ => format!("{}: {}", role.name, request.query.trim()),
            }
        })
        .collect();
    let text = format!("Instruct: {instruction}\nQuery: {}", query_part.join(", "));
    let vector = embed(embedder, text.clone()).await?;
    let mut semantic_request = SearchRequest::new(text)
        .mode(SearchMode::Vector)
        .kinds([item_kind(request.task)])
        .limit(limit.max(50));
    if let Some(asset) = &request.asset {
        if matches!(
            request.task,
            TaskCode::FM2S | TaskCode::A2S | TaskCode::S2FM | TaskCode::FM2CMP
        ) {
            semantic_request = semantic_request.asset(asset.clone());
        }
    }
    let semantic = index
        .search_embedded(&semantic_request, Some(&vector))
        .await?;

    // 4. Fusion: the graph-linked items in semantic order (unranked ones after), then RRF.
    let mut graph_list: Vec<Hit> = semantic
        .iter()
        .filter(|h| linked.contains(&h.iri))
        .cloned()
        .collect();
    let missing: Vec<String> = linked
        .iter()
        .filter(|i| !graph_list.iter().any(|h| &h.iri == *i))
        .cloned()
        .collect();
    let kind = item_kind(request.task);
    graph_list.extend(on_kb(kb, move |kb| hits_for(kb, &missing, kind)).await?);
    let fused = reciprocal_rank_fusion(&[graph_list, semantic.clone()], limit);

    // 5. Explanations.
    let from: Vec<String> = query_entities.iter().map(|(_, e)| e.iri.clone()).collect();
    let to: Vec<String> = fused.iter().map(|h| h.iri.clone()).collect();
    let asset = request.asset.clone();
    let all_paths = on_kb(kb, move |kb| Ok(explain(kb, &from, &to, asset.as_deref())?)).await?;
    let mut items = Vec::with_capacity(fused.len());
    for (hit, paths) in fused.into_iter().zip(all_paths) {
        let semantic_score = semantic.iter().find(|h| h.iri == hit.iri).map(|h| h.score);
        let summary = if paths.is_empty() {
            "semantic match only".to_owned()
        } else {
            paths
                .iter()
                .map(|p| p.iter().map(|f| f.display()).collect::<Vec<_>>().join(", "))
                .collect::<Vec<_>>()
                .join("; ")
        };
        items.push(Recommendation {
            graph_linked: linked.contains(&hit.iri),
            score: hit.score,
            semantic_score,
            explanation: Explanation {
                semantic_only: paths.is_empty(),
                paths,
                summary,
            },
            item: hit,
        });
    }
    Ok(Recommendations {
        task: request.task,
        query_entities: query_entities.into_iter().map(|(_, e)| e).collect(),
        items,
    })
}

/// For each item of `to`, at most [`MAX_PATHS`] paths from the entities of `from`.
fn explain(
    kb: &KnowledgeBase,
    from: &[String],
    to: &[String],
    asset: Option<&str>,
) -> KbResult<Vec<Vec<FactPath>>> {
    let headers = GraphHeaders::read(kb)?;
    to.iter()
        .map(|item| {
            let mut paths = Vec::new();
            for entity in from {
                let room = MAX_PATHS.saturating_sub(paths.len());
                paths.extend(facts::paths(kb, &headers, entity, item, asset, room)?);
            }
            Ok(paths)
        })
        .collect()
}

/// The label of `iri` when it is an entity.
fn summary_of(kb: &KnowledgeBase, iri_: &str) -> Result<Option<String>, RetrievalError> {
    Ok(facts::entity_summary(kb, iri_)?.map(|s| s.label))
}

/// The query as an IRI or prefixed name of an entity of `kind`.
fn direct_iri(
    kb: &KnowledgeBase,
    query: &str,
    kind: &str,
) -> Result<Option<(String, String)>, RetrievalError> {
    let expanded = crate::vocab::expand(query.trim());
    if !expanded.starts_with("http") || !facts::is_plain_iri(&expanded) {
        return Ok(None);
    }
    Ok(facts::entity_summary(kb, &expanded)?
        .filter(|s| s.kind == kind)
        .map(|s| (s.iri, s.label)))
}

/// Hits (score 0) for graph-linked items the semantic search did not return, sorted by IRI.
fn hits_for(kb: &KnowledgeBase, iris: &[String], kind: &str) -> Result<Vec<Hit>, RetrievalError> {
    let summaries = facts::entity_summaries(kb, iris)?;
    let mut hits: Vec<Hit> = iris
        .iter()
        .filter_map(|i| summaries.get(i))
        .map(|s| Hit {
            iri: s.iri.clone(),
            kind: kind.to_owned(),
            label: s.label.clone(),
            text: s.definition.clone().unwrap_or_default(),
            score: 0.0,
            assets: Vec::new(),
            vetting_status: String::new(),
        })
        .collect();
    hits.sort_by(|a, b| a.iri.cmp(&b.iri));
    Ok(hits)
}
