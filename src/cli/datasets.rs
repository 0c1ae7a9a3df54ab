//! The dataset commands: `tasks build`, `augment describe` and `eval`.

use anyhow::{Context, Result};
use assetkg::augment::describe::{describe, DescribeOptions};
use assetkg::augment::descriptions::Descriptions;
use assetkg::augment::llm::{OpenAiClient, OpenAiConfig};
use assetkg::augment::render::RenderOptions;
use assetkg::config::{Config, BASE_MODEL_DIR};
use assetkg::embed::{load_embedder, Backend, Embedder};
use assetkg::eval::{corpus_index, evaluate, EvalReport, Retriever};
use assetkg::kb::KnowledgeBase;
use assetkg::tasks::{self, export::ExportOptions, Split, TaskCode};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Build the nine task datasets from the store and write them: JSONL per task and split,
    /// corpus.jsonl, manifest.json and a BEIR copy. Refuses splits that leak.
    Build {
        /// Output directory (replaced).
        #[arg(long, default_value = "data/tasks")]
        out: PathBuf,
        /// Seed of the splits and of the random choices in the texts.
        #[arg(long, default_value_t = tasks::DEFAULT_SEED)]
        seed: u64,
        /// Probability that an entity description is included in a query text.
        #[arg(long, default_value_t = assetkg::augment::render::PAPER_P_DESC)]
        p_desc: f64,
        /// Rephrasings written for each training query.
        #[arg(long, default_value_t = 8)]
        variants: usize,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AugmentCommand {
    /// Write missing entity descriptions with an LLM (any OpenAI-compatible endpoint:
    /// ASSETKG_LLM_BASE_URL, ASSETKG_LLM_MODEL, ASSETKG_LLM_API_KEY) and store them in the KB
    /// as proposed facts with their provenance.
    Describe {
        /// Only these entities (IRIs or prefixed names such as fm:bearing-wear).
        #[arg(long = "iri")]
        iris: Vec<String>,
        /// Describe again entities that already have a generated description.
        #[arg(long)]
        force: bool,
        /// At most this many entities.
        #[arg(long)]
        limit: Option<usize>,
        /// Longest description, in words.
        #[arg(long, default_value_t = 40)]
        max_words: usize,
        /// Also write the new fact graph as Turtle (to keep it in kb/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Ask the LLM but write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Which split to evaluate.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    split: Split,
    /// Only these tasks (default: all nine).
    #[arg(long = "task")]
    tasks: Vec<String>,
    /// Seed of the dataset splits (must be the one the model was trained with).
    #[arg(long, default_value_t = tasks::DEFAULT_SEED)]
    seed: u64,
    /// The base model the others are compared with.
    #[arg(long, default_value = BASE_MODEL_DIR)]
    base_model: PathBuf,
    /// Where the report goes: OUT.json, OUT.md and OUT.png.
    #[arg(long, default_value = "data/eval/report")]
    out: PathBuf,
    /// Which implementation embeds (fastembed-int8 runs the int8-quantized graph of each model).
    #[arg(long, value_enum, default_value_t = Backend::Fastembed)]
    backend: Backend,
    /// Title of the report.
    #[arg(long, default_value = "Retrieval on the assetkg task datasets")]
    title: String,
}

pub fn tasks(command: TasksCommand, kb: &KnowledgeBase) -> Result<()> {
    let TasksCommand::Build {
        out,
        seed,
        p_desc,
        variants,
        json,
    } = command;
    anyhow::ensure!(
        (0.0..=1.0).contains(&p_desc),
        "--p-desc must be between 0 and 1, not {p_desc}"
    );
    let dataset = build_dataset(kb, seed)?;
    let descriptions = Descriptions::from_kb(kb)?;
    let manifest = tasks::export(
        &dataset,
        &descriptions,
        &ExportOptions { p_desc, variants },
        &out,
    )
    .with_context(|| format!("writing the datasets to {}", out.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header([
        "task",
        "split by",
        "train",
        "validation",
        "test",
        "queries",
        "items",
        "paper",
        "within 50 %",
    ]);
    for t in &manifest.tasks {
        let count = |s: Split| t.queries.get(&s).copied().unwrap_or(0).to_string();
        table.add_row([
            t.task.to_string(),
            t.split_by.clone(),
            count(Split::Train),
            count(Split::Validation),
            count(Split::Test),
            t.total_queries.to_string(),
            t.items.to_string(),
            format!("{} / {}", t.paper_queries, t.paper_items),
            if t.within_half_of_paper {
                "yes".into()
            } else {
                "no".into()
            },
        ]);
    }
    println!("{table}");
    println!(
        "{}: {} queries, corpus of {} items, seed {}, KB version {}, no leaks",
        out.display(),
        dataset.queries.len(),
        manifest.corpus_size,
        seed,
        manifest.kb_version
    );
    Ok(())
}

pub fn augment(command: AugmentCommand, kb: &KnowledgeBase) -> Result<()> {
    let AugmentCommand::Describe {
        iris,
        force,
        limit,
        max_words,
        out,
        dry_run,
        json,
    } = command;
    let llm = OpenAiClient::new(OpenAiConfig::from_env()?)?;
    let options = DescribeOptions {
        iris: iris.iter().map(|i| assetkg::vocab::expand(i)).collect(),
        force,
        limit,
        max_words,
        out,
        dry_run,
        ..DescribeOptions::default()
    };
    let report = super::runtime()?.block_on(describe(kb, &llm, &options))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (iri, text) in &report.described {
            println!("{}: {text}", assetkg::vocab::compact(iri));
        }
        for (iri, reason) in &report.failed {
            eprintln!("failed {}: {reason}", assetkg::vocab::compact(iri));
        }
        println!(
            "{} described, {} failed, {} already had one{}",
            report.described.len(),
            report.failed.len(),
            report.skipped_existing,
            if dry_run {
                " (dry run: nothing written)".to_owned()
            } else {
                format!(", graph {}", report.graph)
            }
        );
    }
    Ok(())
}

pub fn eval(
    args: EvalArgs,
    kb: &KnowledgeBase,
    config: &Config,
    candidate: Option<PathBuf>,
) -> Result<()> {
    let tasks = if args.tasks.is_empty() {
        TaskCode::ALL.to_vec()
    } else {
        args.tasks
            .iter()
            .map(|t| {
                TaskCode::parse(t)
                    .with_context(|| format!("unknown task {t:?} (expected one of E2CAT … A2S)"))
            })
            .collect::<Result<Vec<_>>>()?
    };
    let dataset = build_dataset(kb, args.seed)?;
    let descriptions = Descriptions::from_kb(kb)?;
    let load = |dir: &Path| -> Result<Box<dyn Embedder>> {
        load_embedder(args.backend, dir, &config.ort_dylib)
            .with_context(|| format!("loading the model in {}", dir.display()))
    };
    let base = load(&args.base_model)?;
    let candidate = match candidate {
        Some(dir) if dir != args.base_model => Some((dir.clone(), load(&dir)?)),
        _ => None,
    };
    let index_uri = |embedder: &dyn Embedder| {
        config
            .data_dir
            .join("eval-index")
            .join(assetkg::vocab::slug(embedder.model_id()))
            .to_string_lossy()
            .into_owned()
    };
    let systems = super::runtime()?.block_on(async {
        let mut systems = Vec::new();
        let base_index =
            corpus_index(&index_uri(base.as_ref()), &dataset, base.as_ref(), true).await?;
        let base_name = model_name(&args.base_model);
        let runs = [
            (
                "BM25".to_owned(),
                "bm25".to_owned(),
                Retriever::Bm25 {
                    options: RenderOptions::PLAIN,
                },
            ),
            (
                format!("{base_name} base"),
                base.model_id().to_owned(),
                Retriever::Embedding {
                    options: RenderOptions::PLAIN,
                },
            ),
            (
                format!("{base_name} base + augmentation"),
                base.model_id().to_owned(),
                Retriever::Embedding {
                    options: RenderOptions::AUGMENTED,
                },
            ),
        ];
        for (name, model, retriever) in runs {
            systems.push(
                evaluate(
                    &name,
                    &model,
                    retriever,
                    &dataset,
                    &tasks,
                    args.split,
                    &base_index,
                    base.as_ref(),
                    &descriptions,
                    true,
                )
                .await?,
            );
        }
        if let Some((dir, model)) = &candidate {
            let index =
                corpus_index(&index_uri(model.as_ref()), &dataset, model.as_ref(), true).await?;
            let name = model_name(dir);
            for (suffix, options) in [
                ("", RenderOptions::PLAIN),
                (" + augmentation", RenderOptions::AUGMENTED),
            ] {
                let system_name = format!("{name}{suffix}");
                let retriever = Retriever::Embedding { options };
                systems.push(
                    evaluate(
                        &system_name,
                        model.model_id(),
                        retriever,
                        &dataset,
                        &tasks,
                        args.split,
                        &index,
                        model.as_ref(),
                        &descriptions,
                        true,
                    )
                    .await?,
                );
            }
        }
        anyhow::Ok(systems)
    })?;

    let report = EvalReport {
        title: args.title,
        split: args.split.to_string(),
        kb_version: dataset.kb_version.clone(),
        corpus_size: dataset.corpus.len(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        created: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        systems,
    };
    println!("{}", report.table());
    let (dir, stem) = report_location(&args.out, "report");
    let dir = dir.as_path();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = report.write_all(dir, &stem)?;
    println!(
        "wrote {}, {}, {}",
        files.json.display(),
        files.markdown.display(),
        files.png.display()
    );
    Ok(())
}

/// Builds the datasets, refusing an empty store.
pub(super) fn build_dataset(kb: &KnowledgeBase, seed: u64) -> Result<tasks::Dataset> {
    let dataset = tasks::build(kb, seed)?;
    anyhow::ensure!(
        !dataset.queries.is_empty(),
        "the store holds no task data: run `assetkg load` first"
    );
    Ok(dataset)
}

/// The directory and file stem of a report written to `out` (`docs/eval` → `docs`, `eval`).
pub(super) fn report_location(out: &Path, default_stem: &str) -> (PathBuf, String) {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| default_stem.to_owned());
    (dir.to_owned(), stem)
}

/// A short name for a model directory (its last component).
fn model_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}
