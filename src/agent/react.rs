//! The ReAct loop: thought → action (a tool and its JSON input) → observation, until the policy
//! answers or a budget runs out. The loop owns the mechanics every policy shares: malformed
//! decisions are shown to the policy and retried (then the run fails clearly), repeated actions
//! are refused, and steps, time and tokens are budgeted. Answers carry the cited entities and
//! facts (with provenance and vetting status) and the full trace.

use super::tools::{Action, Observation, Toolbox};
use crate::retrieval::facts::Fact;
use async_trait::async_trait;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What the agent is asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    /// The question.
    pub text: String,
    /// Answer options (multiple-choice mode) — empty for an open question.
    pub options: Vec<String>,
}

/// Whether a multiple-choice question asks for the option that fits or the one that does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, async_graphql::Enum)]
pub enum Polarity {
    /// "Which … is most relevant / indicates / belongs …"
    Select,
    /// "Which … is NOT relevant / least relevant / does not …"
    Eliminate,
}

/// Words that turn a question into an elimination question.
const ELIMINATION_CUES: &[&str] = &[
    " not ",
    "n't ",
    " least ",
    " except ",
    " irrelevant",
    " unrelated",
    " no bearing",
    " odd one out",
    " does not belong",
    " exclude",
];

impl Polarity {
    /// The polarity of a question's wording.
    pub fn of(question: &str) -> Self {
        let text = format!(
            " {} ",
            question.to_lowercase().replace(['?', ',', '.'], " ")
        );
        if ELIMINATION_CUES.iter().any(|cue| text.contains(cue)) {
            Self::Eliminate
        } else {
            Self::Select
        }
    }
}

/// One step of the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// From 1.
    pub index: usize,
    /// The policy's reasoning for the step.
    pub thought: String,
    /// The tool call, when the step made one.
    pub action: Option<Action>,
    /// What the tool returned, or the error shown to the policy.
    pub observation: Option<Observation>,
    /// The candidate actions a constrained policy chose among, with their scores.
    pub candidates: Vec<ScoredCandidate>,
    /// Milliseconds the step took.
    pub elapsed_ms: u64,
}

/// A candidate action and how the policy scored it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredCandidate {
    /// The candidate as the model read it.
    pub text: String,
    /// The model's log-probability of choosing it.
    pub model_logprob: f32,
    /// The planner's grounding score (graph evidence, plan order).
    pub grounding: f32,
    /// True for the one taken.
    pub chosen: bool,
}

/// An entity an answer cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CitedEntity {
    /// Its IRI.
    pub iri: String,
    /// Its label.
    pub label: String,
    /// Its kind.
    pub kind: String,
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// The policy answered.
    Answered,
    /// The step limit was reached.
    StepLimit,
    /// The time budget ran out.
    TimeBudget,
    /// The token budget ran out.
    TokenBudget,
    /// The policy kept producing unusable output, or its backend failed.
    Failed(String),
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The answer for people.
    pub text: String,
    /// The chosen option (from 0), in multiple-choice mode.
    pub choice: Option<usize>,
    /// How the question was read, in multiple-choice mode.
    pub polarity: Option<Polarity>,
    /// The entities the answer names and rests on.
    pub entities: Vec<CitedEntity>,
    /// The graph facts the answer rests on, with provenance and vetting status.
    pub facts: Vec<Fact>,
    /// Every step.
    pub steps: Vec<Step>,
    /// Why the run ended.
    pub stopped: StopReason,
    /// The policy and model that answered.
    pub backend: String,
    /// Tokens the model read and wrote, when it reports them.
    pub tokens: u64,
    /// Wall time of the run in milliseconds.
    pub elapsed_ms: u64,
}

/// What a policy decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Call a tool.
    Act {
        thought: String,
        action: Action,
        candidates: Vec<ScoredCandidate>,
    },
    /// Answer.
    Finish {
        thought: String,
        /// The option chosen (multiple-choice).
        choice: Option<usize>,
        /// The answer text.
        text: String,
        /// IRIs of the entities the answer rests on.
        cite: Vec<String>,
        candidates: Vec<ScoredCandidate>,
    },
    /// The model's output could not be read; `error` is shown to it on the next turn.
    Malformed { raw: String, error: String },
}

/// What a policy sees.
#[derive(Debug, Clone)]
pub struct State<'a> {
    /// The question.
    pub question: &'a Question,
    /// The steps so far.
    pub steps: &'a [Step],
    /// The last malformed output and its error, when the previous decision was unusable.
    pub last_error: Option<(&'a str, &'a str)>,
}

/// Decides the next step.
#[async_trait]
pub trait Policy: Send + Sync {
    /// The policy and its model, for traces and reports.
    fn name(&self) -> String;

    /// The next step; `Err` when the backend itself failed. Also returns the tokens used.
    async fn decide(&self, state: &State<'_>, tools: &Toolbox) -> Result<(Decision, u64), String>;
}

/// Budgets of one run.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Most tool steps.
    pub max_steps: usize,
    /// Most unusable outputs in a row before the run fails.
    pub max_malformed: usize,
    /// Wall-time limit.
    pub time: Duration,
    /// Most tokens read and written by the model.
    pub tokens: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_steps: 8,
            max_malformed: 3,
            time: Duration::from_secs(120),
            tokens: 200_000,
        }
    }
}

/// The agent: a policy, the tools and the budgets.
pub struct Agent {
    /// Decides each step.
    pub policy: Box<dyn Policy>,
    /// The tools.
    pub tools: Toolbox,
    /// The budgets.
    pub budget: Budget,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("policy", &self.policy.name())
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Answers `question`; `on_step` sees each step as it completes (for streaming).
    pub async fn ask(
        &self,
        question: &Question,
        on_step: &mut (dyn FnMut(&Step) + Send),
    ) -> Answer {
        let started = Instant::now();
        let mut steps: Vec<Step> = Vec::new();
        let mut tokens = 0u64;
        let mut malformed: Option<(String, String)> = None;
        let mut malformed_in_row = 0;
        let polarity = (!question.options.is_empty()).then(|| Polarity::of(&question.text));
        let finish = |steps: Vec<Step>, stopped: StopReason, tokens: u64, text: String| Answer {
            text,
            choice: None,
            polarity,
            entities: Vec::new(),
            facts: Vec::new(),
            steps,
            stopped,
            backend: self.policy.name(),
            tokens,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        loop {
            if steps.len() >= self.budget.max_steps {
                let n = steps.len();
                return finish(
                    steps,
                    StopReason::StepLimit,
                    tokens,
                    format!("No answer within {n} steps."),
                );
            }
            if started.elapsed() > self.budget.time {
                return finish(
                    steps,
                    StopReason::TimeBudget,
                    tokens,
                    "No answer within the time budget.".into(),
                );
            }
            if tokens > self.budget.tokens {
                return finish(
                    steps,
                    StopReason::TokenBudget,
                    tokens,
                    "No answer within the token budget.".into(),
                );
            }
            let step_started = Instant::now();
            let state = State {
                question,
                steps: &steps,
                last_error: malformed.as_ref().map(|(r, e)| (r.as_str(), e.as_str())),
            };
            let (decision, used) = match self.policy.decide(&state, &self.tools).await {
                Ok(d) => d,
                Err(e) => {
                    return finish(
                        steps,
                        StopReason::Failed(e.clone()),
                        tokens,
                        format!("The model backend failed: {e}"),
                    );
                }
            };
            tokens += used;
            match decision {
                Decision::Malformed { raw, error } => {
                    malformed_in_row += 1;
                    if malformed_in_row >= self.budget.max_malformed {
                        let reason =
                            format!("{malformed_in_row} unusable outputs in a row; last: {error}");
                        return finish(
                            steps,
                            StopReason::Failed(reason.clone()),
                            tokens,
                            format!("The model did not follow the answer format ({reason})."),
                        );
                    }
                    malformed = Some((raw, error));
                }
                Decision::Act {
                    thought,
                    action,
                    candidates,
                } => {
                    malformed_in_row = 0;
                    malformed = None;
                    let repeated = steps.iter().any(|s| s.action.as_ref() == Some(&action));
                    let observation = if repeated {
                        Observation {
                            text: "error: this exact call was already made; use its observation above, call something else, or answer".into(),
                            error: true,
                            ..Observation::default()
                        }
                    } else {
                        self.tools.run(&action).await
                    };
                    let step = Step {
                        index: steps.len() + 1,
                        thought,
                        action: Some(action),
                        observation: Some(observation),
                        candidates,
                        elapsed_ms: step_started.elapsed().as_millis() as u64,
                    };
                    on_step(&step);
                    steps.push(step);
                    // The same call refused twice: the policy is going round in circles.
                    let refusals = steps
                        .iter()
                        .filter(|s| {
                            s.observation
                                .as_ref()
                                .is_some_and(|o| o.text.starts_with("error: this exact call"))
                        })
                        .count();
                    if refusals >= 2 {
                        return finish(
                            steps,
                            StopReason::Failed("repeated the same action".into()),
                            tokens,
                            "The agent went round in circles and stopped.".into(),
                        );
                    }
                }
                Decision::Finish {
                    thought,
                    choice,
                    text,
                    cite,
                    candidates,
                } => {
                    let step = Step {
                        index: steps.len() + 1,
                        thought,
                        action: None,
                        observation: None,
                        candidates,
                        elapsed_ms: step_started.elapsed().as_millis() as u64,
                    };
                    on_step(&step);
                    steps.push(step);
                    let choice = choice.filter(|c| *c < question.options.len());
                    let (entities, facts) = citations(&self.tools, &steps, &cite);
                    return Answer {
                        text,
                        choice,
                        polarity,
                        entities,
                        facts,
                        steps,
                        stopped: StopReason::Answered,
                        backend: self.policy.name(),
                        tokens,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                    };
                }
            }
        }
    }
}

/// The entities `cite` names and the facts of the trace that involve them: facts from the
/// observations only, so every cited fact is one a tool actually read from the graph.
fn citations(tools: &Toolbox, steps: &[Step], cite: &[String]) -> (Vec<CitedEntity>, Vec<Fact>) {
    let entities: Vec<CitedEntity> = cite
        .iter()
        .filter_map(|iri| tools.linker.entity(iri))
        .map(|m| CitedEntity {
            iri: m.iri,
            label: m.label,
            kind: m.kind,
        })
        .collect();
    let mut facts: Vec<Fact> = Vec::new();
    let mut add = |fact: &Fact| {
        let involved = cite.iter().any(|c| *c == fact.subject || *c == fact.object);
        if involved && !facts.contains(fact) {
            facts.push(fact.clone());
        }
    };
    for observation in steps.iter().filter_map(|s| s.observation.as_ref()) {
        observation.facts.iter().for_each(&mut add);
        observation
            .items
            .iter()
            .flat_map(|i| &i.facts)
            .for_each(&mut add);
    }
    // A relevance judgment links its failure mode and sensor through a middle node: keep the
    // judgment's other facts when one of them is cited.
    let middles: Vec<String> = facts
        .iter()
        .flat_map(|f| [f.subject.clone(), f.object.clone()])
        .filter(|n| n.contains("/judgment/"))
        .collect();
    for observation in steps.iter().filter_map(|s| s.observation.as_ref()) {
        for fact in observation
            .facts
            .iter()
            .chain(observation.items.iter().flat_map(|i| &i.facts))
        {
            if middles.contains(&fact.subject) && !facts.contains(fact) {
                facts.push(fact.clone());
            }
        }
    }
    (entities, facts)
}

#[cfg(test)]
mod tests {
    use super::Polarity;

    #[test]
    fn elimination_wordings_are_recognised() {
        for q in [
            "Which sensor is NOT relevant to bearing wear?",
            "Which of these sensors is least useful for detecting it?",
            "All of these sensors reveal the fault except which one?",
            "Which sensor would be irrelevant for detecting overheating?",
            "Which one doesn't help?",
        ] {
            assert_eq!(Polarity::of(q), Polarity::Eliminate, "{q}");
        }
        for q in [
            "Which sensor is most relevant to bearing wear?",
            "Which failure mode does vibration reveal on a fan?",
            "What is the best indicator of note?",
        ] {
            assert_eq!(Polarity::of(q), Polarity::Select, "{q}");
        }
    }
}
