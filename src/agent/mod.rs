//! The ReAct agent: plans over SPARQL and semantic search, answers with cited graph facts.
//!
//! - [`react`]: the loop (thought → action → observation), budgets, answers with citations;
//! - [`tools`]: link, search, recommend (the nine task tools), describe, neighbors, sparql;
//! - [`planner`]: the constrained policy a small local model drives by scoring candidates;
//! - [`freeform`]: the classic ReAct text format for capable chat models;
//! - [`gguf`] and [`llama`]: the embedded GGUF chat model (SmolLM2-135M-Instruct by default);
//! - [`link`]: entity linking by name;
//! - [`questions`] and [`eval`]: the generated question set and the evaluation.

pub mod eval;
pub mod freeform;
pub mod gguf;
pub mod link;
pub mod llama;
pub mod planner;
pub mod questions;
pub mod react;
pub mod tools;

pub use react::{Agent, Answer, Budget, Polarity, Question, Step, StopReason};
pub use react::{CitedEntity, ScoredCandidate};
pub use tools::{Action, Observation, ToolLimits, Toolbox};

use crate::augment::llm::{LlmError, OpenAiClient, OpenAiConfig};
use crate::kb::{KbResult, KnowledgeBase};
use gguf::GgufModel;
use link::Linker;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Which model drives the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded GGUF model choosing among the planner's candidates (the offline default).
    Gguf(PathBuf),
    /// The embedded GGUF model writing free-form ReAct (to compare; small models do poorly).
    GgufFreeForm(PathBuf),
    /// An OpenAI-compatible chat-completions endpoint writing free-form ReAct.
    OpenAi(OpenAiConfig),
    /// The planner alone, no model (a baseline).
    Planner,
}

impl Backend {
    /// A short name for reports.
    pub fn label(&self) -> String {
        match self {
            Self::Gguf(p) => format!("gguf-constrained ({})", file_name(p)),
            Self::GgufFreeForm(p) => format!("gguf-react ({})", file_name(p)),
            Self::OpenAi(c) => format!("openai-react ({})", c.model),
            Self::Planner => "planner (no model)".into(),
        }
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Loaded models, shared: a GGUF file is read once per path.
#[derive(Default)]
pub struct ModelCache {
    gguf: RwLock<Vec<(PathBuf, Arc<GgufModel>)>>,
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache").finish_non_exhaustive()
    }
}

impl ModelCache {
    /// The model in `path`, loaded on first use.
    pub fn gguf(&self, path: &PathBuf) -> Result<Arc<GgufModel>, LlmError> {
        if let Ok(models) = self.gguf.read() {
            if let Some((_, m)) = models.iter().find(|(p, _)| p == path) {
                return Ok(m.clone());
            }
        }
        let model = Arc::new(GgufModel::load(path)?);
        if let Ok(mut models) = self.gguf.write() {
            models.push((path.clone(), model.clone()));
        }
        Ok(model)
    }

    /// The policy of `backend`.
    pub fn policy(&self, backend: &Backend) -> Result<Box<dyn react::Policy>, LlmError> {
        Ok(match backend {
            Backend::Gguf(path) => {
                let model = self.gguf(path)?;
                Box::new(planner::ConstrainedPolicy::new(Some(model)))
            }
            Backend::GgufFreeForm(path) => {
                let model = self.gguf(path)?;
                Box::new(freeform::FreeFormPolicy::new(Arc::new(model)))
            }
            Backend::OpenAi(config) => Box::new(freeform::FreeFormPolicy::new(Arc::new(
                OpenAiClient::new(config.clone())?,
            ))),
            Backend::Planner => Box::new(planner::ConstrainedPolicy::new(None)),
        })
    }
}

/// The entity names of the current KB version, rebuilt when the version changes.
#[derive(Default)]
pub struct LinkerCache {
    slot: RwLock<Option<(String, Arc<Linker>)>>,
}

impl std::fmt::Debug for LinkerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkerCache").finish_non_exhaustive()
    }
}

impl LinkerCache {
    /// The linker of `kb`'s current version.
    pub fn get(&self, kb: &KnowledgeBase) -> KbResult<Arc<Linker>> {
        let version = kb.current_version()?;
        if let Ok(slot) = self.slot.read() {
            if let Some((v, linker)) = slot.as_ref() {
                if *v == version {
                    return Ok(linker.clone());
                }
            }
        }
        let linker = Arc::new(Linker::build(kb)?);
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some((version, linker.clone()));
        }
        Ok(linker)
    }
}
