//! The agent over GraphQL: `ask(question, options)` answers with citations and the full trace;
//! the `askSteps` subscription streams each step as it happens, then the answer.

use super::Services;
use crate::agent::{Answer, CitedEntity, Polarity, Question, ScoredCandidate, Step};
use crate::retrieval::facts::Fact;
use async_graphql::{Context, Result, SimpleObject, Subscription};
use futures::Stream;
use std::sync::Arc;

/// An entity an answer cites.
#[derive(Debug, Clone, SimpleObject)]
pub struct AgentEntity {
    /// IRI.
    pub iri: String,
    /// Label.
    pub label: String,
    /// Kind.
    pub kind: String,
}

/// A candidate a constrained policy weighed.
#[derive(Debug, Clone, SimpleObject)]
pub struct AgentCandidate {
    /// The candidate as the model read it.
    pub text: String,
    /// The model's log-probability of it.
    pub model_logprob: f64,
    /// The planner's grounding score.
    pub grounding: f64,
    /// The one taken.
    pub chosen: bool,
}

/// One step of the agent's trace.
#[derive(Debug, Clone, SimpleObject)]
pub struct AgentStep {
    /// From 1.
    pub index: i32,
    /// The reasoning of the step.
    pub thought: String,
    /// The tool called, if any.
    pub tool: Option<String>,
    /// Its input (JSON).
    pub input: Option<String>,
    /// What the tool returned.
    pub observation: Option<String>,
    /// The candidates weighed.
    pub candidates: Vec<AgentCandidate>,
    /// Milliseconds.
    pub elapsed_ms: i64,
}

/// The agent's answer.
#[derive(Debug, Clone, SimpleObject)]
pub struct AgentAnswer {
    /// The answer.
    pub text: String,
    /// The chosen option (from 0), for a multiple-choice question.
    pub choice: Option<i32>,
    /// How the question was read (multiple-choice).
    pub polarity: Option<Polarity>,
    /// The entities the answer rests on.
    pub entities: Vec<AgentEntity>,
    /// The graph facts the answer rests on, with provenance and vetting status.
    pub facts: Vec<Fact>,
    /// The full trace.
    pub steps: Vec<AgentStep>,
    /// `Answered`, `StepLimit`, `TimeBudget`, `TokenBudget` or `Failed: …`.
    pub stopped: String,
    /// The policy and model.
    pub backend: String,
    /// Wall time in milliseconds.
    pub elapsed_ms: i64,
}

/// One event of `askSteps`: a step, or (last) the answer.
#[derive(Debug, Clone, SimpleObject)]
pub struct AgentEvent {
    /// A completed step.
    pub step: Option<AgentStep>,
    /// The answer (the last event).
    pub answer: Option<AgentAnswer>,
}

fn candidate(c: &ScoredCandidate) -> AgentCandidate {
    AgentCandidate {
        text: c.text.clone(),
        model_logprob: f64::from(c.model_logprob),
        grounding: f64::from(c.grounding),
        chosen: c.chosen,
    }
}

fn step(s: &Step) -> AgentStep {
    AgentStep {
        index: s.index as i32,
        thought: s.thought.clone(),
        tool: s.action.as_ref().map(|a| a.tool().to_owned()),
        input: s.action.as_ref().map(|a| a.input().to_string()),
        observation: s.observation.as_ref().map(|o| o.text.clone()),
        candidates: s.candidates.iter().map(candidate).collect(),
        elapsed_ms: s.elapsed_ms as i64,
    }
}

fn entity(e: &CitedEntity) -> AgentEntity {
    AgentEntity {
        iri: e.iri.clone(),
        label: e.label.clone(),
        kind: e.kind.clone(),
    }
}

fn answer(a: &Answer) -> AgentAnswer {
    AgentAnswer {
        text: a.text.clone(),
        choice: a.choice.map(|c| c as i32),
        polarity: a.polarity,
        entities: a.entities.iter().map(entity).collect(),
        facts: a.facts.clone(),
        steps: a.steps.iter().map(step).collect(),
        stopped: match &a.stopped {
            crate::agent::StopReason::Failed(m) => format!("Failed: {m}"),
            other => format!("{other:?}"),
        },
        backend: a.backend.clone(),
        elapsed_ms: a.elapsed_ms as i64,
    }
}

/// Checks a question and its options.
pub fn question(text: String, options: Vec<String>) -> Result<Question> {
    if text.trim().is_empty() {
        return Err(super::client_error("BAD_REQUEST", "the question is empty"));
    }
    if !options.is_empty() && !(2..=5).contains(&options.len()) {
        return Err(super::client_error(
            "BAD_REQUEST",
            format!("give 2 to 5 options (or none), not {}", options.len()),
        ));
    }
    Ok(Question { text, options })
}

/// Runs the agent on one question (the `ask` query).
pub async fn ask(ctx: &Context<'_>, text: String, options: Vec<String>) -> Result<AgentAnswer> {
    let services = ctx.data::<Arc<Services>>()?.clone();
    let question = question(text, options)?;
    let agent = services.agent().await?;
    Ok(answer(&agent.ask(&question, &mut |_| {}).await))
}

/// The subscriptions.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Asks the agent and streams its steps as they complete; the last event carries the answer.
    async fn ask_steps(
        &self,
        ctx: &Context<'_>,
        question: String,
        #[graphql(default)] options: Vec<String>,
    ) -> Result<impl Stream<Item = AgentEvent>> {
        let services = ctx.data::<Arc<Services>>()?.clone();
        let question = self::question(question, options)?;
        let agent = services.agent().await?;
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        tokio::spawn(async move {
            let steps = sender.clone();
            let result = agent
                .ask(&question, &mut |s| {
                    // A closed stream (client gone) only stops the events, not the run.
                    let _ = steps.unbounded_send(AgentEvent {
                        step: Some(step(s)),
                        answer: None,
                    });
                })
                .await;
            let _ = sender.unbounded_send(AgentEvent {
                step: None,
                answer: Some(answer(&result)),
            });
        });
        Ok(receiver)
    }
}
