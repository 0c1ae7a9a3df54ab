//! The constrained policy for small local models. A 135M-parameter model cannot be trusted to
//! write tool calls in a free-form format, so the planner proposes the valid next actions (from
//! the entities the question names and the tools that fit them) and the model chooses among
//! them by the log-probability of each candidate's number — never by parsing its text. The
//! model's choice is combined with a grounding score (SayCan-style: plan order for actions, the
//! graph evidence for answer options), so that a small model decides between close candidates
//! and cannot override what the graph states. With no model the planner follows the grounding
//! alone (the `planner` baseline of the evaluation).

use super::gguf::ChoiceScorer;
use super::link::Mention;
use super::react::{Decision, Polarity, Policy, ScoredCandidate, State, Step};
use super::tools::{Action, Observation, ObservedItem, Toolbox};
use crate::augment::llm::ChatMessage;
use crate::index::documents as kinds;
use crate::retrieval::recommend::{item_kind, role_kind};
use crate::tasks::TaskCode;
use crate::vocab::compact;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Grounding of a candidate tool call that follows the plan (a task tool over the question's
/// entities), in the model's log-probability units.
const PLAN_GROUNDING: f32 = 1.0;
/// Grounding of answering once the evidence is in.
const FINISH_GROUNDING: f32 = 2.0;

/// The constrained policy.
pub struct ConstrainedPolicy {
    scorer: Option<Arc<dyn ChoiceScorer>>,
    /// Weight of the grounding score against the model's log-probability.
    pub grounding_weight: f32,
    /// Weight of the graph evidence of an option against the model's log-probability.
    pub evidence_weight: f32,
}

impl ConstrainedPolicy {
    /// The policy with `scorer` choosing among candidates, or the planner alone with `None`.
    pub fn new(scorer: Option<Arc<dyn ChoiceScorer>>) -> Self {
        Self {
            scorer,
            grounding_weight: 3.0,
            evidence_weight: 6.0,
        }
    }
}

/// What the planner read from the question and the trace.
struct Reading<'a> {
    asset: Option<Mention>,
    /// Non-asset entities the question names.
    entities: Vec<Mention>,
    /// Each option's entity, when it names one.
    options: Vec<Option<Mention>>,
    /// The kind of entity the answer is.
    target: Option<String>,
    /// Task-tool observations so far, with the [`specificity`] of their call.
    observations: Vec<(usize, &'a Observation)>,
}

fn read<'a>(state: &'a State<'_>, tools: &Toolbox) -> Reading<'a> {
    let mentions: Vec<Mention> = state
        .steps
        .iter()
        .find(|s| matches!(s.action, Some(Action::Link { .. })))
        .and_then(|s| s.observation.as_ref())
        .map(|o| o.query_entities.clone())
        .unwrap_or_default();
    let asset = mentions
        .iter()
        .find(|m| m.kind == kinds::EQUIPMENT_CLASS)
        .cloned();
    // An option's name may be shared by entities of several kinds: take the kind most options
    // have, and the asset's own entity where the asset is known.
    let candidates: Vec<Vec<Mention>> = state
        .question
        .options
        .iter()
        .map(|o| tools.resolve_all(o))
        .collect();
    let option_kind = majority_kind(&candidates);
    let options: Vec<Option<Mention>> = candidates
        .into_iter()
        .map(|found| {
            let of_kind: Vec<&Mention> = found
                .iter()
                .filter(|m| option_kind.as_deref().is_none_or(|k| m.kind == k))
                .collect();
            of_kind
                .iter()
                .find(|m| asset.as_ref().is_some_and(|a| m.assets.contains(&a.iri)))
                .or_else(|| of_kind.first())
                .map(|m| (*m).clone())
        })
        .collect();
    // Entities named by the options are not what the question is about.
    let entities: Vec<Mention> = mentions
        .into_iter()
        .filter(|m| m.kind != kinds::EQUIPMENT_CLASS)
        .filter(|m| !options.iter().flatten().any(|o| o.iri == m.iri))
        .filter(|m| asset_fits(m, asset.as_ref()))
        .collect();
    let target = option_kind.or_else(|| open_target(&entities));
    let observations = state
        .steps
        .iter()
        .filter_map(|s| match (&s.action, &s.observation) {
            (Some(action @ Action::Recommend { .. }), Some(o)) if !o.error => {
                Some((specificity(action), o))
            }
            _ => None,
        })
        .collect();
    Reading {
        asset,
        entities,
        options,
        target,
        observations,
    }
}

/// An entity belongs with the asset when it is the asset's own, or not tied to any asset.
fn asset_fits(mention: &Mention, asset: Option<&Mention>) -> bool {
    match asset {
        Some(asset) => mention.assets.is_empty() || mention.assets.contains(&asset.iri),
        None => true,
    }
}

/// The kind the most options can name (each option counts a kind once).
fn majority_kind(options: &[Vec<Mention>]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for found in options {
        let kinds: std::collections::BTreeSet<&str> =
            found.iter().map(|m| m.kind.as_str()).collect();
        for kind in kinds {
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(k, _)| k.to_owned())
}

/// What an open question asks for, from what it names: symptoms (sensors) and components
/// point to failure modes, a failure mode to the sensors that reveal it.
fn open_target(entities: &[Mention]) -> Option<String> {
    let has = |kind: &str| entities.iter().any(|m| m.kind == kind);
    if has(kinds::SENSOR) || has(kinds::COMPONENT_KIND) {
        Some(kinds::FAILURE_MODE.into())
    } else if has(kinds::FAILURE_MODE) {
        Some(kinds::SENSOR.into())
    } else {
        None
    }
}

/// How many of the question's entities a call uses (its query entity and its asset): a call
/// that uses more is more specific evidence (FM2S for the failure mode on the asset says more
/// than A2S for the asset alone).
fn specificity(call: &Action) -> usize {
    match call {
        Action::Recommend { query, asset, .. } => {
            1 + usize::from(asset.as_ref().is_some_and(|a| a != query))
        }
        _ => 0,
    }
}

/// The task-tool calls that fit: every task whose items are the target kind and whose roles the
/// question's entities fill, once per entity.
fn planned_calls(reading: &Reading<'_>) -> Vec<Action> {
    let Some(target) = reading.target.as_deref() else {
        return Vec::new();
    };
    let mut calls = Vec::new();
    for task in TaskCode::ALL {
        if item_kind(task) != target {
            continue;
        }
        let roles = task.spec().roles;
        let needs_asset = roles.iter().any(|r| r.var == "asset");
        let query_roles: Vec<&str> = roles
            .iter()
            .filter(|r| r.var != "asset")
            .map(|r| role_kind(task, r.var))
            .collect();
        if needs_asset && reading.asset.is_none() {
            continue;
        }
        let asset = reading.asset.as_ref().map(|a| compact(&a.iri));
        if query_roles.is_empty() {
            // The asset is the query (A2S).
            if let Some(a) = &asset {
                calls.push(Action::Recommend {
                    task: task.to_string(),
                    query: a.clone(),
                    asset: asset.clone(),
                });
            }
            continue;
        }
        for entity in reading
            .entities
            .iter()
            .filter(|m| query_roles.contains(&m.kind.as_str()))
        {
            calls.push(Action::Recommend {
                task: task.to_string(),
                query: compact(&entity.iri),
                asset: if needs_asset { asset.clone() } else { None },
            });
        }
    }
    calls
}

/// How each option stands in the graph evidence: `Some(true)` when a task tool linked it to the
/// question's entities, `Some(false)` when the tools ran and did not, `None` when the option
/// names no entity.
fn option_evidence(reading: &Reading<'_>) -> Vec<(Option<bool>, Vec<ObservedItem>)> {
    // The most specific evidence there is.
    let best = reading
        .observations
        .iter()
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(0);
    reading
        .options
        .iter()
        .map(|option| match option {
            None => (None, Vec::new()),
            Some(m) => {
                let hits: Vec<ObservedItem> = reading
                    .observations
                    .iter()
                    .filter(|(s, _)| *s == best)
                    .flat_map(|(_, o)| &o.items)
                    .filter(|i| i.iri == m.iri && i.graph_linked)
                    .cloned()
                    .collect();
                (Some(!hits.is_empty()), hits)
            }
        })
        .collect()
}

fn describe_call(call: &Action) -> String {
    match call {
        Action::Recommend { task, query, asset } => match asset {
            Some(a) if a != query => format!("{task} tool for {query} on {a}"),
            _ => format!("{task} tool for {query}"),
        },
        Action::Describe { entity } => format!("describe {entity}"),
        other => other.tool().to_owned(),
    }
}

fn trace_summary(steps: &[Step]) -> String {
    steps
        .iter()
        .filter_map(|s| {
            let action = s.action.as_ref()?;
            let observation = s.observation.as_ref().map_or("", |o| o.text.as_str());
            let short: String = observation.chars().take(300).collect();
            Some(format!("- {}: {short}", describe_call(action)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn question_block(state: &State<'_>) -> String {
    let mut text = format!("Question: {}", state.question.text);
    for (i, option) in state.question.options.iter().enumerate() {
        text.push_str(&format!("\n{}. {option}", i + 1));
    }
    text
}

impl ConstrainedPolicy {
    /// Chooses among `labels` (what the model reads, numbered from 1) by model log-probability
    /// plus `weight` × grounding; returns the index and the scored candidates.
    async fn choose(
        &self,
        instruction: &str,
        context: String,
        labels: &[String],
        grounding: &[f32],
        weight: f32,
    ) -> Result<(usize, Vec<ScoredCandidate>, u64), String> {
        let (logprobs, tokens) = match (&self.scorer, labels.len()) {
            (Some(scorer), n) if n > 1 => {
                let menu: String = labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("{}. {l}\n", i + 1))
                    .collect();
                let messages = vec![
                    ChatMessage::system(
                        "You help maintenance engineers by choosing the best next step. Answer with the number only.",
                    ),
                    ChatMessage::user(format!("{context}\n\n{instruction}\n{menu}Answer with the number.")),
                ];
                let numbers: Vec<String> = (1..=labels.len()).map(|i| i.to_string()).collect();
                let scorer = scorer.clone();
                let scored = tokio::task::spawn_blocking(move || {
                    scorer.score_candidates(&messages, &numbers)
                })
                .await
                .map_err(|e| format!("scoring task failed: {e}"))?
                .map_err(|e| e.to_string())?;
                (
                    scored.scores.iter().map(|(s, _)| *s).collect::<Vec<f32>>(),
                    scored.tokens as u64,
                )
            }
            _ => (vec![0.0; labels.len()], 0),
        };
        let totals: Vec<f32> = logprobs
            .iter()
            .zip(grounding)
            .map(|(lp, g)| lp + weight * g)
            .collect();
        let best = totals
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or(0, |(i, _)| i);
        let candidates = labels
            .iter()
            .zip(logprobs.iter().zip(grounding))
            .enumerate()
            .map(|(i, (text, (lp, g)))| ScoredCandidate {
                text: text.clone(),
                model_logprob: *lp,
                grounding: *g,
                chosen: i == best,
            })
            .collect();
        Ok((best, candidates, tokens))
    }

    async fn finish_choice(
        &self,
        state: &State<'_>,
        reading: &Reading<'_>,
    ) -> Result<(Decision, u64), String> {
        let polarity = Polarity::of(&state.question.text);
        let evidence = option_evidence(reading);
        let about: Vec<String> = reading.entities.iter().map(|m| m.label.clone()).collect();
        let about = if about.is_empty() {
            reading
                .asset
                .as_ref()
                .map_or_else(|| "the question".to_owned(), |a| a.label.clone())
        } else {
            about.join(" and ")
        };
        let lines: Vec<String> = state
            .question
            .options
            .iter()
            .zip(&evidence)
            .map(|(option, (linked, _))| match linked {
                Some(true) => format!("{option}: the graph links it to {about}"),
                Some(false) => format!("{option}: the graph does not link it to {about}"),
                None => format!("{option}: not in the graph"),
            })
            .collect();
        let grounding: Vec<f32> = evidence
            .iter()
            .map(|(linked, _)| match (linked, polarity) {
                (Some(true), Polarity::Select) | (Some(false), Polarity::Eliminate) => 1.0,
                (None, _) => 0.5,
                _ => 0.0,
            })
            .collect();
        let context = format!(
            "{}\n\nGraph evidence:\n{}",
            question_block(state),
            lines.join("\n")
        );
        let instruction = match polarity {
            Polarity::Select => "Which option is the answer (the one the graph links)?",
            Polarity::Eliminate => "Which option is the answer (the one the graph does NOT link)?",
        };
        let (choice, candidates, tokens) = self
            .choose(
                instruction,
                context,
                &state.question.options,
                &grounding,
                self.evidence_weight,
            )
            .await?;
        let option = &state.question.options[choice];
        let mut cite: Vec<String> = reading.entities.iter().map(|m| m.iri.clone()).collect();
        cite.extend(reading.asset.iter().map(|a| a.iri.clone()));
        let chosen = reading.options[choice].as_ref();
        cite.extend(chosen.map(|m| m.iri.clone()));
        let because = match (polarity, &evidence[choice]) {
            (Polarity::Select, (Some(true), hits)) => {
                let fact = hits
                    .iter()
                    .flat_map(|h| &h.facts)
                    .next()
                    .map(|f| format!(" ({}, {})", f.display(), f.vetting_status))
                    .unwrap_or_default();
                format!("the knowledge graph links {option} to {about}{fact}")
            }
            (Polarity::Eliminate, (Some(false), _)) => {
                let others: Vec<&str> = state
                    .question
                    .options
                    .iter()
                    .zip(&evidence)
                    .filter(|(_, (l, _))| *l == Some(true))
                    .map(|(o, _)| o.as_str())
                    .collect();
                // The linked options are the evidence of an elimination.
                cite.extend(
                    reading
                        .options
                        .iter()
                        .zip(&evidence)
                        .filter(|(_, (l, _))| *l == Some(true))
                        .filter_map(|(m, _)| m.as_ref().map(|m| m.iri.clone())),
                );
                format!(
                    "the knowledge graph links {} to {about}, but not {option}",
                    others.join(", ")
                )
            }
            _ => "the graph evidence does not single it out; chosen by the model".to_owned(),
        };
        let text = format!("Option {}: {option} — {because}.", choice + 1);
        Ok((
            Decision::Finish {
                thought: format!(
                    "Read as {} question; weighed the graph evidence of each option.",
                    match polarity {
                        Polarity::Select => "a selection",
                        Polarity::Eliminate => "an elimination",
                    }
                ),
                choice: Some(choice),
                text,
                cite,
                candidates,
            },
            tokens,
        ))
    }

    fn finish_open(reading: &Reading<'_>) -> Decision {
        // Items by how many of the question's entities link to them.
        let mut support: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (_, observation) in &reading.observations {
            for item in observation.items.iter().filter(|i| i.graph_linked) {
                let entry = support
                    .entry(item.iri.clone())
                    .or_insert((0, item.label.clone()));
                entry.0 += 1;
            }
        }
        let best = support.values().map(|(n, _)| *n).max().unwrap_or(0);
        let mut top: Vec<(&String, &String)> = support
            .iter()
            .filter(|(_, (n, _))| *n == best && best > 0)
            .map(|(iri, (_, label))| (iri, label))
            .collect();
        top.truncate(6);
        let asset = reading
            .asset
            .as_ref()
            .map_or_else(String::new, |a| format!(" of the {}", a.label));
        let named: Vec<&str> = reading.entities.iter().map(|m| m.label.as_str()).collect();
        let text = if top.is_empty() {
            format!(
                "The knowledge graph links nothing{asset} to {}; describe the symptom with the names of its sensors or components.",
                if named.is_empty() { "what the question names".to_owned() } else { named.join(", ") }
            )
        } else {
            let what = match reading.target.as_deref() {
                Some(kinds::SENSOR) => "these sensors",
                _ => "these failure modes",
            };
            format!(
                "Check {what}{asset}: {}. The knowledge graph links each of them to {}.",
                top.iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                named.join(" and ")
            )
        };
        let mut cite: Vec<String> = top.iter().map(|(i, _)| (*i).clone()).collect();
        cite.extend(reading.entities.iter().map(|m| m.iri.clone()));
        cite.extend(reading.asset.iter().map(|a| a.iri.clone()));
        Decision::Finish {
            thought:
                "Ranked what the task tools linked by how many of the named entities support it."
                    .into(),
            choice: None,
            text,
            cite,
            candidates: Vec::new(),
        }
    }
}

#[async_trait]
impl Policy for ConstrainedPolicy {
    fn name(&self) -> String {
        match &self.scorer {
            Some(s) => format!("constrained:{}", s.model_id()),
            None => "planner".into(),
        }
    }

    async fn decide(&self, state: &State<'_>, tools: &Toolbox) -> Result<(Decision, u64), String> {
        if state.steps.is_empty() {
            return Ok((
                Decision::Act {
                    thought: "Find the KB entities the question names.".into(),
                    action: Action::Link {
                        text: state.question.text.clone(),
                    },
                    candidates: Vec::new(),
                },
                0,
            ));
        }
        let reading = read(state, tools);
        let taken: Vec<&Action> = state
            .steps
            .iter()
            .filter_map(|s| s.action.as_ref())
            .collect();
        let planned = planned_calls(&reading);
        let best = planned.iter().map(specificity).max().unwrap_or(0);
        let mut pending: Vec<Action> = planned
            .into_iter()
            .filter(|c| !taken.contains(&c))
            .collect();
        pending.sort_by_key(|c| std::cmp::Reverse(specificity(c)));
        let describes: Vec<Action> = reading
            .entities
            .iter()
            .map(|m| Action::Describe {
                entity: compact(&m.iri),
            })
            .filter(|c| !taken.contains(&c))
            .take(2)
            .collect();
        // Open questions use every planned call; a multiple-choice one needs the evidence of one
        // of the most specific calls.
        let can_finish = if state.question.options.is_empty() {
            pending.is_empty() || reading.observations.len() >= 4
        } else {
            pending.is_empty() || reading.observations.iter().any(|(s, _)| *s >= best)
        };

        let mut labels: Vec<String> = Vec::new();
        let mut grounding: Vec<f32> = Vec::new();
        let mut actions: Vec<Option<Action>> = Vec::new();
        if can_finish {
            labels.push("answer now from the evidence".into());
            grounding.push(FINISH_GROUNDING);
            actions.push(None);
        }
        for call in pending.iter().take(4) {
            labels.push(describe_call(call));
            // Less specific calls are possible, not preferred.
            grounding.push(if specificity(call) == best {
                PLAN_GROUNDING
            } else {
                PLAN_GROUNDING * 0.3
            });
            actions.push(Some(call.clone()));
        }
        for call in describes {
            labels.push(describe_call(&call));
            grounding.push(0.0);
            actions.push(Some(call));
        }
        if actions.is_empty() {
            labels.push("answer now from the evidence".into());
            grounding.push(0.0);
            actions.push(None);
        }
        let context = format!(
            "{}\n\nEntities named: {}\nDone so far:\n{}",
            question_block(state),
            reading
                .asset
                .iter()
                .chain(&reading.entities)
                .map(|m| format!("{} ({})", m.label, m.kind))
                .collect::<Vec<_>>()
                .join(", "),
            trace_summary(state.steps)
        );
        let (pick, candidates, tokens) = self
            .choose(
                "What is the best next step?",
                context,
                &labels,
                &grounding,
                self.grounding_weight,
            )
            .await?;
        match actions[pick].clone() {
            Some(action) => Ok((
                Decision::Act {
                    thought: format!("Next: {}.", labels[pick]),
                    action,
                    candidates,
                },
                tokens,
            )),
            None => {
                let (mut decision, more) = if state.question.options.is_empty() {
                    (Self::finish_open(&reading), 0)
                } else {
                    self.finish_choice(state, &reading).await?
                };
                // The step's record shows the plan choice and, for options, the answer choice.
                if let Decision::Finish {
                    candidates: answer, ..
                } = &mut decision
                {
                    let mut all = candidates;
                    all.append(answer);
                    *answer = all;
                }
                Ok((decision, tokens + more))
            }
        }
    }
}
