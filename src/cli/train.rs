//! `assetkg train` and `assetkg ablate`: fine-tuning from a recipe, and the ablation sweeps.

use anyhow::{Context, Result};
use assetkg::augment::descriptions::Descriptions;
use assetkg::kb::KnowledgeBase;
use assetkg::train::ablate::{ablate, Plan};
use assetkg::train::encoder::FrozenCache;
use assetkg::train::validate::headline;
use assetkg::train::{train, Recipe, RunOptions, TrainOutcome};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The training recipe (TOML; see recipes/finetune.toml).
    #[arg(long)]
    recipe: PathBuf,
    /// Ignore a checkpoint left by an interrupted run of the same recipe and start afresh.
    #[arg(long)]
    restart: bool,
    /// Write the model somewhere else than the recipe's `out`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop after this many steps in all and leave a checkpoint; the same command resumes.
    #[arg(long)]
    stop_after: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AblateArgs {
    /// The ablation plan (TOML; see recipes/ablate.toml).
    #[arg(long)]
    recipe: PathBuf,
    /// Where the report goes: OUT.json, OUT.md and OUT-*.png.
    #[arg(long, default_value = "docs/ablations")]
    out: PathBuf,
}

pub fn run_train(args: TrainArgs, kb: &KnowledgeBase) -> Result<()> {
    let mut recipe = Recipe::load(&args.recipe)?;
    if let Some(out) = args.out {
        recipe.out = out;
    }
    let dataset = super::datasets::build_dataset(kb, recipe.data.dataset_seed)?;
    let descriptions = Descriptions::from_kb(kb)?;
    let hidden = assetkg::embed::ModelDir::open(&recipe.base_model)
        .with_context(|| format!("opening the base model {}", recipe.base_model.display()))?
        .config
        .hidden_size;
    let mut cache = FrozenCache::new(recipe.frozen_layers, hidden);
    let options = RunOptions {
        progress: true,
        resume: !args.restart,
        write_model: true,
        stop_after: args.stop_after,
    };
    let outcome = train(&recipe, &dataset, &descriptions, &mut cache, options)?.outcome;
    print_outcome(&outcome);
    Ok(())
}

fn print_outcome(o: &TrainOutcome) {
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(["task", "test queries", "HIT@1", "MAP@100", "NDCG@10"]);
    for t in &o.test.tasks {
        table.add_row([
            t.task.clone(),
            t.queries.to_string(),
            pct(t.scores.hit_at_1),
            pct(t.scores.map_at_100),
            pct(t.scores.ndcg_at_10),
        ]);
    }
    table.add_row([
        "mean".to_owned(),
        o.test
            .tasks
            .iter()
            .map(|t| t.queries)
            .sum::<usize>()
            .to_string(),
        pct(o.test.mean.hit_at_1),
        pct(o.test.mean.map_at_100),
        pct(o.test.mean.ndcg_at_10),
    ]);
    println!("{table}");
    println!(
        "{} steps in {:.1} min ({} texts cached in {:.0} s); kept step {} (validation {}); test mean of 3: {}",
        o.steps,
        (o.seconds + o.resumed_seconds) / 60.0,
        o.cached_texts,
        o.cache_seconds,
        o.best_step,
        pct(o.validation.selection),
        pct(headline(&o.test.mean)),
    );
    if o.stopped {
        println!("stopped with a checkpoint; run the same command again to resume");
    }
    if let Some(dir) = &o.model_dir {
        println!(
            "wrote {} (evaluate: assetkg eval --model {0}; serve: assetkg index --model {0})",
            dir.display()
        );
    }
}

pub fn run_ablate(args: AblateArgs, kb: &KnowledgeBase) -> Result<()> {
    let plan = Plan::load(&args.recipe)?;
    let dataset = super::datasets::build_dataset(kb, plan.base.data.dataset_seed)?;
    let descriptions = Descriptions::from_kb(kb)?;
    let report = ablate(&plan, &dataset, &descriptions, true, |i, n, r| {
        eprintln!(
            "ablation {i}/{n}: {} = {}: test HIT@1 {:.1}, MAP@100 {:.1}, NDCG@10 {:.1} ({:.1} min)",
            r.sweep,
            r.value,
            r.test.hit_at_1 * 100.0,
            r.test.map_at_100 * 100.0,
            r.test.ndcg_at_10 * 100.0,
            r.seconds / 60.0
        );
    })?;
    let (dir, stem) = super::datasets::report_location(&args.out, "ablations");
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    for path in report.write_all(&dir, &stem, &command)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
