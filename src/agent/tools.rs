//! The agent's tools over the knowledge base and the index. Every tool only reads: `sparql`
//! accepts a query and nothing else (an update is refused before anything runs). Each call
//! returns an [`Observation`]: a short text for the model, and the entities, items and facts
//! (with provenance and vetting status) behind it, from which answers cite.

use super::link::{Linker, Mention};
use crate::embed::Embedder;
use crate::index::{EntityIndex, SearchMode, SearchRequest};
use crate::kb::{KnowledgeBase, QueryLimits, QueryOutcome};
use crate::retrieval::facts::{self, Direction, Fact, GraphHeaders};
use crate::retrieval::{recommend, RecommendRequest};
use crate::tasks::TaskCode;
use crate::vocab::{compact, expand, PREFIXES};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// One tool call, as the model writes it: `{"tool": "search", "input": {"text": "…"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tool", content = "input", rename_all = "snake_case")]
pub enum Action {
    /// The KB entities a text names (by label or synonym).
    Link {
        /// The text.
        text: String,
    },
    /// Semantic + keyword search of the entities.
    Search {
        /// What to look for.
        text: String,
        /// Only these kinds (`sensor`, `failure_mode`, …).
        #[serde(default)]
        kinds: Vec<String>,
        /// Only entities of this equipment class (name or IRI).
        #[serde(default)]
        asset: Option<String>,
    },
    /// One of the nine task tools: ranked items with graph explanations.
    Recommend {
        /// Task code (FM2S, S2FM, A2S, C2FM, FM2CMP, FM2CLS, E2CAT, E2CLT, ES2U).
        task: String,
        /// The query entity: a name, IRI or prefixed name.
        query: String,
        /// The equipment class (name or IRI), for tasks that have one.
        #[serde(default)]
        asset: Option<String>,
    },
    /// An entity's label, definition and relations.
    Describe {
        /// Name, IRI or prefixed name.
        entity: String,
    },
    /// The entities linked to one by a relation.
    Neighbors {
        /// Name, IRI or prefixed name.
        entity: String,
        /// The relation (prefixed name such as `akg:hasFailureMode`); all when absent.
        #[serde(default)]
        relation: Option<String>,
    },
    /// A read-only SPARQL query (project prefixes predeclared).
    Sparql {
        /// The query.
        query: String,
    },
}

impl Action {
    /// The tool's name.
    pub fn tool(&self) -> &'static str {
        match self {
            Self::Link { .. } => "link",
            Self::Search { .. } => "search",
            Self::Recommend { .. } => "recommend",
            Self::Describe { .. } => "describe",
            Self::Neighbors { .. } => "neighbors",
            Self::Sparql { .. } => "sparql",
        }
    }

    /// The input as JSON (the form the model writes).
    pub fn input(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("input").cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Parses a tool name and its JSON input.
    pub fn parse(tool: &str, input: serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(serde_json::json!({ "tool": tool.trim(), "input": input }))
            .map_err(|e| format!("not a valid call of tool `{}`: {e}", tool.trim()))
    }
}

/// The one-line description of every tool, for prompts.
pub const TOOL_DESCRIPTIONS: &str = "\
link {\"text\"}: the KB entities a text names
search {\"text\", \"kinds\"?, \"asset\"?}: entities by meaning and words
recommend {\"task\", \"query\", \"asset\"?}: ranked items for a task (FM2S failure mode→sensors, S2FM sensor→failure modes, A2S asset→sensors, C2FM component→failure modes, FM2CMP failure class→components, FM2CLS description→failure class, E2CAT, E2CLT, ES2U), with the graph facts that link them
describe {\"entity\"}: an entity's definition and relations
neighbors {\"entity\", \"relation\"?}: the entities linked to one
sparql {\"query\"}: a read-only SPARQL SELECT/ASK/CONSTRUCT (prefixes akg:, fm:, sensor:, cls: … predeclared)";

/// An item a tool returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedItem {
    /// The entity IRI.
    pub iri: String,
    /// Its label.
    pub label: String,
    /// Its kind.
    pub kind: String,
    /// The tool's score (higher is better).
    pub score: f32,
    /// True when graph facts (not only the embedding) link it to the query.
    pub graph_linked: bool,
    /// The facts that link it to the query entities (recommend), with provenance.
    pub facts: Vec<Fact>,
}

/// What a tool returned.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Observation {
    /// What the model reads.
    pub text: String,
    /// The entities the query of the call was resolved to.
    pub query_entities: Vec<Mention>,
    /// The items returned, best first.
    pub items: Vec<ObservedItem>,
    /// The graph facts behind the result, with provenance.
    pub facts: Vec<Fact>,
    /// True when the call failed (the text says why).
    pub error: bool,
}

impl Observation {
    fn failed(message: impl Into<String>) -> Self {
        Self {
            text: format!("error: {}", message.into()),
            error: true,
            ..Self::default()
        }
    }
}

/// Limits of tool calls.
#[derive(Debug, Clone)]
pub struct ToolLimits {
    /// Most rows a SPARQL call returns.
    pub sparql_rows: usize,
    /// Time limit of a SPARQL call.
    pub sparql_timeout: Duration,
    /// Most items a search or recommend call returns.
    pub items: usize,
    /// Most facts a describe or neighbors call lists in its text.
    pub facts_shown: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            sparql_rows: 50,
            sparql_timeout: Duration::from_secs(10),
            items: 10,
            facts_shown: 25,
        }
    }
}

/// What the tools read: the KB, the index with the model that built it, and the entity names.
#[derive(Clone)]
pub struct Toolbox {
    /// The knowledge base.
    pub kb: Arc<KnowledgeBase>,
    /// The entity index.
    pub index: Arc<EntityIndex>,
    /// The index's embedding model.
    pub embedder: Arc<dyn Embedder>,
    /// Entity names of the current KB version.
    pub linker: Arc<Linker>,
    /// Limits of each call.
    pub limits: ToolLimits,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox").finish_non_exhaustive()
    }
}

/// A reference to an entity in a tool input: an IRI, a prefixed name or a name.
fn is_iri_like(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("http://") || text.starts_with("https://") || {
        text.split_once(':')
            .is_some_and(|(p, l)| !l.contains(' ') && PREFIXES.iter().any(|(q, _)| *q == p))
    }
}

impl Toolbox {
    /// Runs `action`. Failures come back as observations that say what was wrong (the model
    /// reads them and may try again); nothing a tool does writes to the store.
    pub async fn run(&self, action: &Action) -> Observation {
        let result = match action {
            Action::Link { text } => Ok(self.link(text)),
            Action::Search { text, kinds, asset } => {
                self.search(text, kinds, asset.as_deref()).await
            }
            Action::Recommend { task, query, asset } => {
                self.recommend(task, query, asset.as_deref()).await
            }
            Action::Describe { entity } => self.neighbors(entity, None, true).await,
            Action::Neighbors { entity, relation } => {
                self.neighbors(entity, relation.as_deref(), false).await
            }
            Action::Sparql { query } => self.sparql(query).await,
        };
        result.unwrap_or_else(Observation::failed)
    }

    /// The entity a tool input names (the first of [`Self::resolve_all`]).
    pub fn resolve(&self, reference: &str) -> Option<Mention> {
        self.resolve_all(reference).into_iter().next()
    }

    /// Every entity a tool input may name: the entity of an IRI; else the entities whose name is
    /// exactly the input (several when a name is shared, e.g. a sensor and a failure-mode class
    /// both called "vibration"); else the entities named inside it.
    pub fn resolve_all(&self, reference: &str) -> Vec<Mention> {
        let reference = reference.trim();
        if is_iri_like(reference) {
            return self.linker.entity(&expand(reference)).into_iter().collect();
        }
        let wanted = super::link::normalise(reference);
        let mentions = self.linker.mentions(reference);
        let exact: Vec<Mention> = mentions
            .iter()
            .filter(|m| super::link::normalise(&m.label) == wanted)
            .cloned()
            .collect();
        if exact.is_empty() {
            mentions
        } else {
            exact
        }
    }

    /// The IRI of the equipment class an input names.
    async fn asset(&self, name: Option<&str>) -> Result<Option<String>, String> {
        let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
            return Ok(None);
        };
        let kb = self.kb.clone();
        let owned = name.to_owned();
        let found = tokio::task::spawn_blocking(move || {
            crate::index::documents::resolve_asset(&kb, &owned)
        })
        .await
        .map_err(|e| format!("store task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        found
            .map(Some)
            .ok_or_else(|| format!("no equipment class is named `{name}`"))
    }

    fn link(&self, text: &str) -> Observation {
        let mentions = self.linker.mentions(text);
        let text = if mentions.is_empty() {
            "no KB entity is named in the text".to_owned()
        } else {
            mentions
                .iter()
                .map(|m| format!("{} ({}, {})", m.label, m.kind, compact(&m.iri)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        Observation {
            text,
            query_entities: mentions,
            ..Observation::default()
        }
    }

    async fn search(
        &self,
        text: &str,
        kinds: &[String],
        asset: Option<&str>,
    ) -> Result<Observation, String> {
        let mut request = SearchRequest::new(text)
            .mode(SearchMode::Hybrid)
            .kinds(kinds.iter().cloned())
            .limit(self.limits.items);
        if let Some(asset) = self.asset(asset).await? {
            request = request.asset(asset);
        }
        let hits = self
            .index
            .search(&request, self.embedder.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let items: Vec<ObservedItem> = hits
            .iter()
            .map(|h| ObservedItem {
                iri: h.iri.clone(),
                label: h.label.clone(),
                kind: h.kind.clone(),
                score: h.score,
                graph_linked: false,
                facts: Vec::new(),
            })
            .collect();
        Ok(Observation {
            text: list_items(&items),
            items,
            ..Observation::default()
        })
    }

    async fn recommend(
        &self,
        task: &str,
        query: &str,
        asset: Option<&str>,
    ) -> Result<Observation, String> {
        let task = TaskCode::parse(task.trim()).ok_or_else(|| {
            format!("`{task}` is not a task (FM2S, S2FM, A2S, C2FM, FM2CMP, FM2CLS, E2CAT, E2CLT, ES2U)")
        })?;
        let asset = self.asset(asset).await?;
        // A name the linker knows goes in as its IRI: exact, where search would guess.
        let query = match self.resolve(query) {
            Some(m) => m.iri,
            None => query.to_owned(),
        };
        let request = RecommendRequest {
            task,
            query,
            asset,
            limit: self.limits.items,
        };
        let result = recommend(&self.kb, &self.index, &self.embedder, &request)
            .await
            .map_err(|e| e.to_string())?;
        let query_entities: Vec<Mention> = result
            .query_entities
            .iter()
            .filter_map(|e| self.linker.entity(&e.iri))
            .collect();
        let mut facts: Vec<Fact> = Vec::new();
        let items: Vec<ObservedItem> = result
            .items
            .iter()
            .map(|r| {
                for fact in r.explanation.paths.iter().flatten() {
                    if !facts.contains(fact) {
                        facts.push(fact.clone());
                    }
                }
                ObservedItem {
                    iri: r.item.iri.clone(),
                    label: r.item.label.clone(),
                    kind: r.item.kind.clone(),
                    score: r.score,
                    graph_linked: r.graph_linked,
                    facts: r.explanation.paths.iter().flatten().cloned().collect(),
                }
            })
            .collect();
        let understood = result
            .query_entities
            .iter()
            .map(|e| format!("{} = {}", e.role, e.label))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Observation {
            text: format!("{task} for {understood}: {}", list_items(&items)),
            query_entities,
            items,
            facts,
            error: false,
        })
    }

    async fn neighbors(
        &self,
        entity: &str,
        relation: Option<&str>,
        with_definition: bool,
    ) -> Result<Observation, String> {
        let mention = self
            .resolve(entity)
            .ok_or_else(|| format!("no KB entity is named `{entity}`"))?;
        let relation = relation.map(|r| expand(r.trim()));
        if relation
            .as_deref()
            .is_some_and(|r| !facts::is_plain_iri(r) || !r.starts_with("http"))
        {
            return Err(format!(
                "`{}` is not a relation IRI or prefixed name",
                relation.unwrap_or_default()
            ));
        }
        let kb = self.kb.clone();
        let iri = mention.iri.clone();
        let (summary, relations) = tokio::task::spawn_blocking(move || {
            let headers = GraphHeaders::read(&kb)?;
            let summary = facts::entity_summary(&kb, &iri)?;
            let relations = facts::relations(&kb, &headers, &iri, relation.as_deref(), None)?;
            Ok::<_, crate::kb::KbError>((summary, relations))
        })
        .await
        .map_err(|e| format!("store task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        let labels = self.labels(relations.iter().map(|r| r.other.as_str()));
        let mut lines = Vec::new();
        if with_definition {
            if let Some(definition) = summary.as_ref().and_then(|s| s.definition.as_ref()) {
                lines.push(format!("{}: {definition}", mention.label));
            } else {
                lines.push(format!("{} ({})", mention.label, mention.kind));
            }
        }
        for relation in relations.iter().take(self.limits.facts_shown) {
            let other = labels
                .iter()
                .find(|(i, _)| *i == relation.other)
                .map_or_else(|| compact(&relation.other), |(_, l)| l.clone());
            let predicate = compact(&relation.fact.predicate);
            lines.push(match relation.direction {
                Direction::Outgoing => format!("{} {predicate} {other}", mention.label),
                Direction::Incoming => format!("{other} {predicate} {}", mention.label),
            });
        }
        if relations.len() > self.limits.facts_shown {
            lines.push(format!(
                "… {} more",
                relations.len() - self.limits.facts_shown
            ));
        }
        if relations.is_empty() && !with_definition {
            lines.push(format!("{} has no such relations", mention.label));
        }
        let items = relations
            .iter()
            .filter_map(|r| self.linker.entity(&r.other))
            .map(|m| {
                let facts = relations
                    .iter()
                    .filter(|r| r.other == m.iri)
                    .map(|r| r.fact.clone())
                    .collect();
                ObservedItem {
                    iri: m.iri,
                    label: m.label,
                    kind: m.kind,
                    score: 1.0,
                    graph_linked: true,
                    facts,
                }
            })
            .collect();
        Ok(Observation {
            text: lines.join("\n"),
            query_entities: vec![mention],
            items,
            facts: relations.into_iter().map(|r| r.fact).collect(),
            error: false,
        })
    }

    fn labels<'a>(&self, iris: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
        iris.filter_map(|i| self.linker.entity(i).map(|m| (i.to_owned(), m.label)))
            .collect()
    }

    async fn sparql(&self, query: &str) -> Result<Observation, String> {
        check_read_only(query)?;
        let limits = QueryLimits {
            cancel: oxigraph::sparql::CancellationToken::new(),
            timeout: self.limits.sparql_timeout,
            max_results: self.limits.sparql_rows,
        };
        let cancel = limits.cancel.clone();
        let timeout = self.limits.sparql_timeout;
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            cancel.cancel();
        });
        let kb = self.kb.clone();
        let owned = query.to_owned();
        let outcome = tokio::task::spawn_blocking(move || kb.query_limited(&owned, &limits)).await;
        timer.abort();
        let outcome = outcome
            .map_err(|e| format!("query task failed: {e}"))?
            .map_err(|e| e.to_string())?;
        Ok(self.sparql_observation(&outcome))
    }

    fn sparql_observation(&self, outcome: &QueryOutcome) -> Observation {
        let show = |t: &oxigraph::model::Term| crate::kb::show_term(t);
        let mut items = Vec::new();
        let mut remember = |term: &oxigraph::model::Term| {
            if let oxigraph::model::Term::NamedNode(n) = term {
                if let Some(m) = self.linker.entity(n.as_str()) {
                    if !items.iter().any(|i: &ObservedItem| i.iri == m.iri) {
                        items.push(ObservedItem {
                            iri: m.iri,
                            label: m.label,
                            kind: m.kind,
                            score: 1.0,
                            graph_linked: true,
                            facts: Vec::new(),
                        });
                    }
                }
            }
        };
        let text = match outcome {
            QueryOutcome::Boolean(b) => b.to_string(),
            QueryOutcome::Solutions { variables, rows } => {
                let mut lines = vec![variables
                    .iter()
                    .map(|v| format!("?{}", v.as_str()))
                    .collect::<Vec<_>>()
                    .join(" ")];
                for row in rows.iter().take(self.limits.sparql_rows) {
                    row.iter().flatten().for_each(&mut remember);
                    lines.push(
                        row.iter()
                            .map(|t| t.as_ref().map_or_else(|| "-".to_owned(), show))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                lines.push(format!("({} rows)", rows.len()));
                lines.join("\n")
            }
            QueryOutcome::Graph(triples) => {
                let mut lines = Vec::new();
                for t in triples.iter().take(self.limits.sparql_rows) {
                    remember(&t.object);
                    lines.push(format!(
                        "{} {} {}",
                        compact(t.subject.to_string().trim_matches(['<', '>'])),
                        compact(t.predicate.as_str()),
                        show(&t.object)
                    ));
                }
                lines.push(format!("({} triples)", triples.len()));
                lines.join("\n")
            }
        };
        Observation {
            text,
            items,
            ..Observation::default()
        }
    }
}

/// Refuses anything but a query: SPARQL Update (and anything that does not parse) never reaches
/// the store from the agent.
pub fn check_read_only(sparql: &str) -> Result<(), String> {
    let mut parser = spargebra::SparqlParser::new();
    for (prefix, iri) in PREFIXES {
        parser = parser
            .with_prefix(*prefix, *iri)
            .map_err(|e| format!("prefix {prefix}: {e}"))?;
    }
    match parser.clone().parse_query(sparql) {
        Ok(_) => Ok(()),
        Err(query_error) => {
            if parser.parse_update(sparql).is_ok() {
                Err("SPARQL updates are not allowed: the agent only reads the graph".into())
            } else {
                Err(format!("the SPARQL query does not parse: {query_error}"))
            }
        }
    }
}

fn list_items(items: &[ObservedItem]) -> String {
    if items.is_empty() {
        return "nothing found".into();
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let link = if item.graph_linked {
                ", graph-linked"
            } else {
                ""
            };
            format!("{}. {} ({}{link})", i + 1, item.label, item.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_refused_and_queries_pass() {
        assert!(check_read_only("SELECT ?s WHERE { ?s a akg:Sensor }").is_ok());
        let err = check_read_only("DELETE WHERE { ?s ?p ?o }").unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        let err = check_read_only("DROP ALL").unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        let err = check_read_only("SELEC nothing").unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
    }

    #[test]
    fn actions_round_trip_through_the_model_format() {
        let action = Action::parse(
            "recommend",
            serde_json::json!({"task": "FM2S", "query": "impeller wear", "asset": "centrifugal pump"}),
        )
        .unwrap();
        assert_eq!(action.tool(), "recommend");
        assert_eq!(
            Action::parse(action.tool(), action.input()).unwrap(),
            action
        );
        let err = Action::parse("delete", serde_json::json!({})).unwrap_err();
        assert!(err.contains("`delete`"), "{err}");
    }
}
