//! The training loop: batches from the sampler, the loss of the epoch, an AdamW step on the
//! upper layers; validation every `eval_every` steps with the best weights kept; a resumable
//! checkpoint every `checkpoint_every` steps.

use super::checkpoint::{self, Checkpoint};
use super::data::TrainingData;
use super::encoder::{encode, FrozenCache};
use super::loss;
use super::optim::{learning_rate, AdamW};
use super::recipe::{LossKind, Recipe};
use super::sampler::{Pair, Sampler};
use super::validate::{score, SplitScores};
use super::{TrainError, TrainResult};
use crate::augment::render::Describe;
use crate::embed::bert::BertEncoder;
use crate::embed::ModelDir;
use crate::tasks::Dataset;
use candle_core::{Device, Tensor, Var};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// How a run behaves beyond its recipe.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Show progress bars.
    pub progress: bool,
    /// Continue from the checkpoint in the output directory if the same recipe wrote it.
    pub resume: bool,
    /// Write the model directory (ablation runs only keep their scores).
    pub write_model: bool,
    /// Stop after this many steps in all, leaving a checkpoint to resume from (time-boxed
    /// runs); the model is written only when the run completes.
    pub stop_after: Option<usize>,
}

/// One validation point of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    /// Mean training loss since the previous point (none for the base model's point).
    pub loss: Option<f64>,
    /// The validation selection score (see [`SplitScores::selection`]).
    pub validation: f64,
}

/// What a run did and how good its best weights are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOutcome {
    pub recipe: Recipe,
    pub base_model_id: String,
    pub steps: usize,
    /// The step whose weights were kept (0: the base model was never beaten).
    pub best_step: usize,
    pub history: Vec<EvalPoint>,
    /// Scores of the kept weights.
    pub validation: SplitScores,
    pub test: SplitScores,
    /// Distinct texts and the time to run the frozen layers over them.
    pub cached_texts: usize,
    pub cache_seconds: f64,
    /// Wall time of the whole run, this process only (a resumed run adds to `resumed_seconds`).
    pub seconds: f64,
    /// Wall time spent before the run was resumed.
    pub resumed_seconds: f64,
    /// Where the model was written, if it was.
    pub model_dir: Option<std::path::PathBuf>,
    /// Whether the run was stopped early by [`RunOptions::stop_after`] (then the scores are
    /// those of the best weights so far and nothing was written but the checkpoint).
    pub stopped: bool,
}

/// A finished run: its outcome and the encoder holding the kept weights.
pub struct Trained {
    pub outcome: TrainOutcome,
    pub encoder: BertEncoder,
}

/// Trains `recipe` on `dataset`. `cache` holds frozen-layer outputs and may be shared by runs
/// with the same base model and frozen layers (ablations).
pub fn train(
    recipe: &Recipe,
    dataset: &Dataset,
    descriptions: &dyn Describe,
    cache: &mut FrozenCache,
    options: RunOptions,
) -> TrainResult<Trained> {
    let started = Instant::now();
    let base = ModelDir::open(&recipe.base_model)?;
    let mut encoder = BertEncoder::load(&base)?;
    encoder.set_max_length(recipe.data.max_length)?;
    let layers = encoder.bert().num_layers();
    if recipe.frozen_layers >= layers || cache.frozen() != recipe.frozen_layers {
        return Err(TrainError::Setup(format!(
            "frozen_layers = {} must be below the model's {layers} layers (cache of {})",
            recipe.frozen_layers,
            cache.frozen()
        )));
    }

    let data = TrainingData::build(dataset, descriptions, &recipe.data);
    if data.positive_pairs.is_empty() {
        return Err(TrainError::Setup(
            "the training split has no positive pairs: is the store loaded?".into(),
        ));
    }
    let all_texts: Vec<&str> = (0..data.texts.len()).map(|i| data.texts.get(i)).collect();
    let cache_started = Instant::now();
    cache.fill(&encoder, &all_texts, options.progress)?;
    let cache_seconds = cache_started.elapsed().as_secs_f64();
    tracing::info!(
        texts = all_texts.len(),
        seconds = format!("{cache_seconds:.1}"),
        "frozen layers cached"
    );

    let vars = trainable_vars(&encoder, recipe.frozen_layers)?;
    let mut optimizer = AdamW::new(vars, recipe.schedule.weight_decay)?;
    let sampler = Sampler::new(&data, recipe);
    let total = sampler.total_steps();
    tracing::info!(
        steps = total,
        positive_pairs = data.positive_pairs.len(),
        train_queries = data.train.len(),
        "training {} of {layers} layers",
        layers - recipe.frozen_layers
    );

    let checkpoint_dir = checkpoint::dir_of(&recipe.out);
    let mut state = Checkpoint::fresh(recipe.fingerprint());
    let mut best: Option<HashMap<String, Tensor>> = None;
    if options.resume && options.write_model {
        if let Some((loaded, best_weights)) =
            checkpoint::load(&checkpoint_dir, recipe, &mut optimizer)?
        {
            tracing::info!(
                step = loaded.step,
                "resuming from {}",
                checkpoint_dir.display()
            );
            state = loaded;
            best = best_weights;
        }
    }
    if state.step == 0 && state.history.is_empty() {
        // The base model is the first candidate: training must beat it to be kept.
        let base_scores = score(encoder.bert(), cache, &data, &data.validation)?;
        state.best_score = base_scores.selection;
        state.history.push(EvalPoint {
            step: 0,
            loss: None,
            validation: base_scores.selection,
        });
    }

    let bar = progress_bar(options.progress, total as u64, state.step as u64);
    let (mut loss_sum, mut loss_count) = (0.0, 0usize);
    let run_started = Instant::now();
    let end = options.stop_after.map_or(total, |n| n.min(total));
    for step in state.step..end {
        let Some((epoch, in_epoch)) = sampler.locate(step) else {
            break;
        };
        let batch = sampler.batch(epoch, in_epoch);
        let loss = batch_loss(&encoder, cache, &data, &batch, sampler.loss(epoch), recipe)?;
        let lr = learning_rate(
            step,
            total,
            recipe.schedule.learning_rate,
            recipe.schedule.warmup,
        );
        optimizer.step(&loss, lr)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(TrainError::Diverged { step, loss: value });
        }
        loss_sum += value;
        loss_count += 1;
        state.step = step + 1;
        bar.set_position(state.step as u64);
        bar.set_message(format!(
            "epoch {}/{} {} loss {:.4} lr {lr:.1e} best {:.3}",
            epoch + 1,
            recipe.schedule.epochs,
            sampler.loss(epoch).as_str(),
            loss_sum / loss_count as f64,
            state.best_score
        ));

        let last = state.step == total;
        if state.step.is_multiple_of(recipe.schedule.eval_every) || last {
            let scores = score(encoder.bert(), cache, &data, &data.validation)?;
            state.history.push(EvalPoint {
                step: state.step,
                loss: (loss_count > 0).then(|| loss_sum / loss_count as f64),
                validation: scores.selection,
            });
            (loss_sum, loss_count) = (0.0, 0);
            if scores.selection > state.best_score {
                state.best_score = scores.selection;
                state.best_step = state.step;
                best = Some(snapshot(optimizer.vars())?);
            }
            tracing::info!(
                step = state.step,
                validation = scores.selection,
                best = state.best_score,
                "validation"
            );
        }
        let stopping = state.step == end && !last;
        if options.write_model
            && (state.step.is_multiple_of(recipe.schedule.checkpoint_every) || stopping)
            && !last
        {
            state.seconds = state.seconds_before + run_started.elapsed().as_secs_f64();
            checkpoint::save(&checkpoint_dir, &state, &optimizer, best.as_ref())?;
        }
    }
    bar.finish_and_clear();

    // Keep the best weights (or the base model's, if no validation beat it).
    match &best {
        Some(weights) => restore(optimizer.vars(), weights)?,
        None => {
            let base_weights = candle_core::safetensors::load(base.weights(), &Device::Cpu)?;
            restore(optimizer.vars(), &base_weights)?;
        }
    }
    let validation = score(encoder.bert(), cache, &data, &data.validation)?;
    let test = score(encoder.bert(), cache, &data, &data.test)?;
    let mut outcome = TrainOutcome {
        recipe: recipe.clone(),
        base_model_id: base.model_id()?,
        steps: state.step,
        best_step: state.best_step,
        history: state.history,
        validation,
        test,
        cached_texts: cache.len(),
        cache_seconds,
        seconds: started.elapsed().as_secs_f64(),
        resumed_seconds: state.seconds_before,
        model_dir: None,
        stopped: state.step < total,
    };
    if options.write_model && !outcome.stopped {
        outcome.model_dir = Some(super::output::write_model(&encoder, &base, &outcome)?);
        checkpoint::remove(&checkpoint_dir)?;
    }
    Ok(Trained { outcome, encoder })
}

/// The variables of layers `frozen..`, by checkpoint name.
fn trainable_vars(encoder: &BertEncoder, frozen: usize) -> TrainResult<Vec<(String, Var)>> {
    let data = encoder
        .varmap()
        .data()
        .lock()
        .map_err(|_| TrainError::Setup("the model's variables are poisoned".into()))?;
    let mut vars: Vec<(String, Var)> = data
        .iter()
        .filter(|(name, _)| layer_of(name).is_some_and(|l| l >= frozen))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

/// The encoder layer a variable belongs to (`encoder.layer.N.…`).
pub fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("encoder.layer.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The loss of one batch: each distinct query text and item is encoded once.
fn batch_loss(
    encoder: &BertEncoder,
    cache: &FrozenCache,
    data: &TrainingData,
    batch: &[Pair],
    kind: LossKind,
    recipe: &Recipe,
) -> TrainResult<Tensor> {
    let (mut query_texts, mut item_texts) = (Vec::new(), Vec::new());
    let (mut query_rows, mut item_rows) = (Vec::new(), Vec::new());
    for pair in batch {
        query_rows.push(row_of(&mut query_texts, data.texts.get(pair.text)));
        item_rows.push(row_of(
            &mut item_texts,
            data.texts.get(data.corpus_texts[pair.item]),
        ));
    }
    let bert = encoder.bert();
    let device = Device::Cpu;
    let queries = encode(bert, cache, &query_texts)?
        .index_select(&Tensor::new(query_rows.as_slice(), &device)?, 0)?;
    let items = encode(bert, cache, &item_texts)?
        .index_select(&Tensor::new(item_rows.as_slice(), &device)?, 0)?;
    Ok(match kind {
        LossKind::Mnrl => {
            loss::multiple_negatives_ranking(&queries, &items, recipe.schedule.mnrl_scale)?
        }
        _ => {
            let labels: Vec<f32> = batch.iter().map(|p| p.label).collect();
            let labels = Tensor::new(labels.as_slice(), &device)?;
            loss::contrastive(&queries, &items, &labels, recipe.schedule.margin)?
        }
    })
}

/// The row of `text` in `texts`, appending it if new.
fn row_of<'a>(texts: &mut Vec<&'a str>, text: &'a str) -> u32 {
    let row = texts.iter().position(|t| *t == text).unwrap_or_else(|| {
        texts.push(text);
        texts.len() - 1
    });
    row as u32
}

/// Copies of the variables' current values.
fn snapshot(vars: &[(String, Var)]) -> candle_core::Result<HashMap<String, Tensor>> {
    vars.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect()
}

/// Sets each variable to its value in `weights`.
pub(crate) fn restore(
    vars: &[(String, Var)],
    weights: &HashMap<String, Tensor>,
) -> candle_core::Result<()> {
    for (name, var) in vars {
        let value = weights
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no saved value for {name}")))?;
        var.set(value)?;
    }
    Ok(())
}

fn progress_bar(show: bool, total: u64, position: u64) -> ProgressBar {
    let bar = crate::progress::bar(
        show,
        total,
        "{bar:30} {pos}/{len} steps {per_sec} ({eta} left) {msg}",
        "",
    );
    bar.set_position(position);
    bar
}
