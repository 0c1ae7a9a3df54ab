//! A training recipe: everything that decides what a run learns, read from a TOML file. Unknown
//! keys are errors (a misspelt option must not silently fall back to its default), and every
//! value is range-checked with the key named in the message.

use super::{TrainError, TrainResult};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What the model is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// ContrastiveLoss on labelled (query, item) pairs with cosine distance and a margin.
    Contrastive,
    /// MultipleNegativesRankingLoss: (query, positive) pairs, the other items of the batch are
    /// the negatives.
    Mnrl,
    /// `mnrl_epochs` of MNRL, then contrastive for the remaining epochs.
    MnrlThenContrastive,
}

impl LossKind {
    /// The name used in recipes and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            LossKind::Contrastive => "contrastive",
            LossKind::Mnrl => "mnrl",
            LossKind::MnrlThenContrastive => "mnrl-then-contrastive",
        }
    }
}

/// How training examples are made from the task datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataRecipe {
    /// Seed of the dataset splits (must match the evaluation's).
    pub dataset_seed: u64,
    /// Probability that an entity's description is added to a training query (the paper: 0.4).
    pub p_desc: f64,
    /// Probability that an entity is named by a synonym in a training query.
    pub p_synonym: f64,
    /// Rendered variants per training query (instruction paraphrase, synonyms, descriptions).
    pub variants: usize,
    /// Longest input in tokens (longer texts are cut).
    pub max_length: usize,
    /// Share of negatives drawn from the expert's "not relevant" judgments, where a query has them.
    pub hard_negative_share: f64,
    /// Share of negatives drawn from the whole corpus (other kinds of items) rather than the
    /// task's own items: evaluation ranks the shared corpus of all tasks.
    pub corpus_negative_share: f64,
}

impl Default for DataRecipe {
    fn default() -> Self {
        Self {
            dataset_seed: crate::tasks::DEFAULT_SEED,
            p_desc: crate::augment::render::PAPER_P_DESC,
            p_synonym: 0.3,
            variants: 4,
            max_length: 128,
            hard_negative_share: 0.5,
            corpus_negative_share: 0.2,
        }
    }
}

/// The optimisation schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleRecipe {
    pub loss: LossKind,
    /// Epochs in all; an epoch is as many pairs as twice the positive pairs (one pass over the
    /// positives at ratio 0.5), so every positive ratio gets the same compute.
    pub epochs: usize,
    /// Of `epochs`, how many use MNRL first (two-stage loss only).
    pub mnrl_epochs: usize,
    /// Pairs per batch.
    pub batch_size: usize,
    /// Share of positive pairs in a contrastive batch.
    pub positive_ratio: f64,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// Share of the steps over which the learning rate rises linearly to its peak.
    pub warmup: f64,
    pub weight_decay: f64,
    /// ContrastiveLoss margin on the cosine distance.
    pub margin: f64,
    /// MNRL similarity scale.
    pub mnrl_scale: f64,
    /// Evaluate on the validation split every this many steps (and at the end).
    pub eval_every: usize,
    /// Write a resumable checkpoint every this many steps.
    pub checkpoint_every: usize,
}

impl Default for ScheduleRecipe {
    fn default() -> Self {
        Self {
            loss: LossKind::Contrastive,
            epochs: 3,
            mnrl_epochs: 1,
            batch_size: 32,
            positive_ratio: 0.5,
            learning_rate: 2e-5,
            warmup: 0.1,
            weight_decay: 0.01,
            margin: 0.5,
            mnrl_scale: 20.0,
            eval_every: 100,
            checkpoint_every: 50,
        }
    }
}

/// A training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The base model directory (sentence-transformers layout).
    #[serde(default = "default_base_model")]
    pub base_model: PathBuf,
    /// Where the trained model goes.
    pub out: PathBuf,
    /// Seed of sampling and shuffling: the same seed and recipe give the same model.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Lower encoder layers kept frozen; their output is computed once per text and cached.
    #[serde(default = "default_frozen_layers")]
    pub frozen_layers: usize,
    #[serde(default)]
    pub data: DataRecipe,
    #[serde(default)]
    pub schedule: ScheduleRecipe,
}

fn default_base_model() -> PathBuf {
    PathBuf::from(crate::config::BASE_MODEL_DIR)
}

fn default_seed() -> u64 {
    42
}

fn default_frozen_layers() -> usize {
    3
}

impl Recipe {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> TrainResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and checks a recipe; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> TrainResult<Self> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| TrainError::Recipe {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        recipe.check().map_err(|message| TrainError::Recipe {
            path: path.to_owned(),
            message,
        })?;
        Ok(recipe)
    }

    /// Range checks, naming the key at fault.
    pub fn check(&self) -> Result<(), String> {
        let d = &self.data;
        let s = &self.schedule;
        let unit = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} = {v}: must be between 0 and 1"))
            }
        };
        unit("data.p_desc", d.p_desc)?;
        unit("data.p_synonym", d.p_synonym)?;
        unit("data.hard_negative_share", d.hard_negative_share)?;
        unit("data.corpus_negative_share", d.corpus_negative_share)?;
        unit("schedule.positive_ratio", s.positive_ratio)?;
        unit("schedule.warmup", s.warmup)?;
        let positive = |key: &str, v: usize| {
            if v > 0 {
                Ok(())
            } else {
                Err(format!("{key} must be at least 1"))
            }
        };
        positive("data.variants", d.variants)?;
        positive("schedule.epochs", s.epochs)?;
        positive("schedule.eval_every", s.eval_every)?;
        positive("schedule.checkpoint_every", s.checkpoint_every)?;
        if d.max_length < 8 {
            return Err(format!(
                "data.max_length = {}: must be at least 8",
                d.max_length
            ));
        }
        if s.batch_size < 2 {
            return Err(format!(
                "schedule.batch_size = {}: must be at least 2",
                s.batch_size
            ));
        }
        if !(s.learning_rate > 0.0 && s.learning_rate < 1.0) {
            return Err(format!(
                "schedule.learning_rate = {}: must be in (0, 1)",
                s.learning_rate
            ));
        }
        if s.loss == LossKind::MnrlThenContrastive && s.mnrl_epochs >= s.epochs {
            return Err(format!(
                "schedule.mnrl_epochs = {} leaves no contrastive epoch of schedule.epochs = {}",
                s.mnrl_epochs, s.epochs
            ));
        }
        Ok(())
    }

    /// A short hash of everything that changes what is learnt (not `out`): a checkpoint is
    /// resumed only by the recipe that wrote it.
    pub fn fingerprint(&self) -> String {
        let mut learning = self.clone();
        learning.out = PathBuf::new();
        let json = serde_json::to_string(&learning).unwrap_or_default();
        hex::encode(&Sha256::digest(json.as_bytes())[..8])
    }

    /// The loss of `epoch` (0-based).
    pub fn loss_of_epoch(&self, epoch: usize) -> LossKind {
        match self.schedule.loss {
            LossKind::MnrlThenContrastive if epoch < self.schedule.mnrl_epochs => LossKind::Mnrl,
            LossKind::MnrlThenContrastive => LossKind::Contrastive,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_minimal_recipe() {
        let r = Recipe::parse("out = \"m\"\n", Path::new("r.toml")).unwrap();
        assert_eq!(r.schedule.batch_size, 32);
        assert_eq!(r.data.p_desc, 0.4);
        assert_eq!(r.loss_of_epoch(0), LossKind::Contrastive);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Recipe::parse("out = \"m\"\n[schedule]\nbatch = 3\n", Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml") && e.contains("batch"), "{e}");
        let e = Recipe::parse(
            "out = \"m\"\n[schedule]\npositive_ratio = 1.5\n",
            Path::new("r.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("schedule.positive_ratio"), "{e}");
    }

    #[test]
    fn two_stage_switches_loss_and_fingerprint_ignores_out() {
        let mut r = Recipe::parse(
            "out = \"a\"\n[schedule]\nloss = \"mnrl-then-contrastive\"\nepochs = 3\nmnrl_epochs = 1\n",
            Path::new("r.toml"),
        )
        .unwrap();
        assert_eq!(r.loss_of_epoch(0), LossKind::Mnrl);
        assert_eq!(r.loss_of_epoch(1), LossKind::Contrastive);
        let f = r.fingerprint();
        r.out = PathBuf::from("b");
        assert_eq!(r.fingerprint(), f);
        r.seed += 1;
        assert_ne!(r.fingerprint(), f);
    }
}
