//! `assetkg eval-agent`: runs the agent with each backend over the generated question set and
//! reports multiple-choice accuracy (overall, by task and by phrasing), cited-entity recall on
//! the open questions, mean steps and latency — as a table, JSON, Markdown and a PNG chart.
//! A "model only" row answers the multiple-choice questions with the local model scoring the
//! options directly, without tools, to show what the graph adds.

use super::gguf::ChoiceScorer;
use super::questions::{ChoiceQuestion, OpenQuestion, QuestionSet};
use super::react::{Agent, Answer, Polarity, Question, StopReason};
use crate::augment::llm::ChatMessage;
use crate::eval::report::{grouped_bar_chart, BarChart};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One question's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The question id.
    pub id: String,
    /// Multiple-choice: right or wrong. Open: every expected entity cited.
    pub correct: bool,
    /// Open: the share of expected entities cited.
    pub recall: Option<f64>,
    /// Tool steps taken.
    pub steps: usize,
    /// Wall time (ms).
    pub latency_ms: u64,
    /// Facts cited.
    pub facts_cited: usize,
    /// Why the run ended.
    pub stopped: String,
}

/// The scores of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendScores {
    /// The backend.
    pub backend: String,
    /// Multiple-choice accuracy (%).
    pub choice_accuracy: f64,
    /// Accuracy on selection phrasings (%).
    pub select_accuracy: f64,
    /// Accuracy on elimination phrasings (%).
    pub eliminate_accuracy: f64,
    /// Accuracy per task (%).
    pub by_task: BTreeMap<String, f64>,
    /// Accuracy per number of options (%).
    pub by_options: BTreeMap<usize, f64>,
    /// Open questions whose expected entities were all cited (%); `None` when not run.
    pub open_full_recall: Option<f64>,
    /// Mean share of expected entities cited (%).
    pub open_mean_recall: Option<f64>,
    /// Mean tool steps per question.
    pub mean_steps: f64,
    /// Mean latency per question (ms).
    pub mean_latency_ms: f64,
    /// 95th-percentile latency (ms).
    pub p95_latency_ms: f64,
    /// Answers that carried a trace and at least one cited fact (%).
    pub with_citations: f64,
    /// Per question.
    pub outcomes: Vec<Outcome>,
}

fn percent(hits: usize, total: usize) -> f64 {
    if total == 0 {
        f64::NAN
    } else {
        100.0 * hits as f64 / total as f64
    }
}

fn outcome_of(id: &str, answer: &Answer, correct: bool, recall: Option<f64>) -> Outcome {
    Outcome {
        id: id.to_owned(),
        correct,
        recall,
        steps: answer.steps.iter().filter(|s| s.action.is_some()).count(),
        latency_ms: answer.elapsed_ms,
        facts_cited: answer.facts.len(),
        stopped: match &answer.stopped {
            StopReason::Failed(m) => format!("failed: {m}"),
            other => format!("{other:?}"),
        },
    }
}

/// Runs `agent` over `set` (multiple-choice, then open questions).
pub async fn run_agent(
    agent: &Agent,
    set: &QuestionSet,
    progress: &indicatif::ProgressBar,
) -> BackendScores {
    let mut choice_outcomes = Vec::new();
    for q in &set.choice {
        let question = Question {
            text: q.text.clone(),
            options: q.options.clone(),
        };
        let answer = agent.ask(&question, &mut |_| {}).await;
        let correct = answer.choice == Some(q.answer);
        choice_outcomes.push((
            q,
            outcome_of(&q.id, &answer, correct, None),
            !answer.facts.is_empty(),
        ));
        progress.inc(1);
    }
    let mut open_outcomes = Vec::new();
    for q in &set.open {
        let question = Question {
            text: q.text.clone(),
            options: Vec::new(),
        };
        let answer = agent.ask(&question, &mut |_| {}).await;
        let cited: Vec<&str> = answer.entities.iter().map(|e| e.iri.as_str()).collect();
        let found = q
            .expected
            .iter()
            .filter(|e| cited.contains(&e.as_str()))
            .count();
        let recall = found as f64 / q.expected.len().max(1) as f64;
        let full = found == q.expected.len();
        open_outcomes.push((
            q,
            outcome_of(&q.id, &answer, full, Some(recall)),
            !answer.facts.is_empty(),
        ));
        progress.inc(1);
    }
    scores(agent.policy.name(), &choice_outcomes, &open_outcomes)
}

/// The "model only" baseline: the local model scores the options of each multiple-choice
/// question directly (no tools, no graph).
pub async fn run_model_only(
    scorer: Arc<dyn ChoiceScorer>,
    set: &QuestionSet,
    progress: &indicatif::ProgressBar,
) -> BackendScores {
    let mut outcomes = Vec::new();
    for q in &set.choice {
        let started = std::time::Instant::now();
        let mut prompt = format!("Question: {}", q.text);
        for (i, o) in q.options.iter().enumerate() {
            prompt.push_str(&format!("\n{}. {o}", i + 1));
        }
        prompt.push_str("\nAnswer with the number of the right option.");
        let messages = vec![
            ChatMessage::system("You are an expert in industrial maintenance."),
            ChatMessage::user(prompt),
        ];
        let numbers: Vec<String> = (1..=q.options.len()).map(|i| i.to_string()).collect();
        let s = scorer.clone();
        let scored =
            tokio::task::spawn_blocking(move || s.score_candidates(&messages, &numbers)).await;
        let choice = match scored {
            Ok(Ok(scored)) => scored
                .scores
                .iter()
                .enumerate()
                .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
                .map(|(i, _)| i),
            _ => None,
        };
        let outcome = Outcome {
            id: q.id.clone(),
            correct: choice == Some(q.answer),
            recall: None,
            steps: 0,
            latency_ms: started.elapsed().as_millis() as u64,
            facts_cited: 0,
            stopped: "Answered".into(),
        };
        outcomes.push((q, outcome, false));
        progress.inc(1);
    }
    scores(format!("model only:{}", scorer.model_id()), &outcomes, &[])
}

fn scores(
    backend: String,
    choice: &[(&ChoiceQuestion, Outcome, bool)],
    open: &[(&OpenQuestion, Outcome, bool)],
) -> BackendScores {
    let accuracy = |filter: &dyn Fn(&ChoiceQuestion) -> bool| {
        let selected: Vec<&(&ChoiceQuestion, Outcome, bool)> =
            choice.iter().filter(|(q, _, _)| filter(q)).collect();
        percent(
            selected.iter().filter(|(_, o, _)| o.correct).count(),
            selected.len(),
        )
    };
    let mut by_task = BTreeMap::new();
    let mut by_options = BTreeMap::new();
    for (q, _, _) in choice {
        by_task.entry(q.task.clone()).or_insert(0.0);
        by_options.entry(q.options.len()).or_insert(0.0);
    }
    for (task, value) in by_task.iter_mut() {
        *value = accuracy(&|q| q.task == *task);
    }
    for (n, value) in by_options.iter_mut() {
        *value = accuracy(&|q| q.options.len() == *n);
    }
    let all: Vec<&Outcome> = choice
        .iter()
        .map(|(_, o, _)| o)
        .chain(open.iter().map(|(_, o, _)| o))
        .collect();
    let mut latencies: Vec<u64> = all.iter().map(|o| o.latency_ms).collect();
    latencies.sort_unstable();
    let p95 = latencies
        .get((latencies.len() * 95 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0) as f64;
    let n = all.len().max(1) as f64;
    let cited =
        choice.iter().filter(|(_, _, c)| *c).count() + open.iter().filter(|(_, _, c)| *c).count();
    BackendScores {
        backend,
        choice_accuracy: accuracy(&|_| true),
        select_accuracy: accuracy(&|q| q.polarity == Polarity::Select),
        eliminate_accuracy: accuracy(&|q| q.polarity == Polarity::Eliminate),
        by_task,
        by_options,
        open_full_recall: (!open.is_empty()).then(|| {
            percent(
                open.iter().filter(|(_, o, _)| o.correct).count(),
                open.len(),
            )
        }),
        open_mean_recall: (!open.is_empty()).then(|| {
            100.0 * open.iter().filter_map(|(_, o, _)| o.recall).sum::<f64>() / open.len() as f64
        }),
        mean_steps: all.iter().map(|o| o.steps as f64).sum::<f64>() / n,
        mean_latency_ms: all.iter().map(|o| o.latency_ms as f64).sum::<f64>() / n,
        p95_latency_ms: p95,
        with_citations: percent(cited, all.len()),
        outcomes: all.into_iter().cloned().collect(),
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct AgentReport {
    /// When it ran.
    pub generated_at: String,
    /// The KB version the questions come from.
    pub kb_version: String,
    /// Multiple-choice questions.
    pub choice_questions: usize,
    /// Open questions.
    pub open_questions: usize,
    /// Per backend.
    pub backends: Vec<BackendScores>,
}

fn show(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "–".into()
    }
}

impl AgentReport {
    /// The summary table (Markdown).
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| backend | MC accuracy % | selection % | elimination % | open: all expected cited % | open: mean recall % | mean steps | mean latency ms | p95 latency ms | answers citing facts % |\n|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for b in &self.backends {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {} |\n",
                b.backend,
                show(b.choice_accuracy),
                show(b.select_accuracy),
                show(b.eliminate_accuracy),
                b.open_full_recall.map_or("–".into(), show),
                b.open_mean_recall.map_or("–".into(), show),
                b.mean_steps,
                b.mean_latency_ms,
                b.p95_latency_ms,
                show(b.with_citations),
            ));
        }
        out
    }

    /// Accuracy per task and per option count (Markdown).
    pub fn breakdown(&self) -> String {
        let mut out = String::new();
        for b in &self.backends {
            out.push_str(&format!("\n**{}** — by task: ", b.backend));
            out.push_str(
                &b.by_task
                    .iter()
                    .map(|(t, v)| format!("{t} {}", show(*v)))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            out.push_str("; by number of options: ");
            out.push_str(
                &b.by_options
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", show(*v)))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            out.push('\n');
        }
        out
    }

    /// Writes `{stem}.json`, `{stem}.md` and `{stem}.png` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str, notes: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{stem}.json")),
            serde_json::to_string_pretty(self)?,
        )?;
        let chart = BarChart {
            title: "Agent on the generated question set".into(),
            y_label: "%".into(),
            groups: vec![
                "MC accuracy".into(),
                "selection".into(),
                "elimination".into(),
                "open: all expected cited".into(),
            ],
            series: self
                .backends
                .iter()
                .map(|b| {
                    (
                        b.backend.clone(),
                        vec![
                            b.choice_accuracy,
                            b.select_accuracy,
                            b.eliminate_accuracy,
                            b.open_full_recall.unwrap_or(f64::NAN),
                        ],
                    )
                })
                .collect(),
            y_max: None,
        };
        grouped_bar_chart(&dir.join(format!("{stem}.png")), &chart)?;
        let markdown = format!(
            "# Agent evaluation\n\nGenerated {} from KB version `{}`: {} multiple-choice and {} open questions \
(`assetkg eval-agent`).\n\n{}\n{}\n![chart]({stem}.png)\n\n{notes}\n",
            self.generated_at,
            self.kb_version,
            self.choice_questions,
            self.open_questions,
            self.table(),
            self.breakdown(),
        );
        std::fs::write(dir.join(format!("{stem}.md")), markdown)?;
        Ok(())
    }
}
