//! `assetkg ask` and `assetkg eval-agent`: the ReAct agent from the command line.

use anyhow::{Context, Result};
use assetkg::agent::eval::{run_agent, run_model_only, AgentReport};
use assetkg::agent::gguf::DEFAULT_GGUF;
use assetkg::agent::link::Linker;
use assetkg::agent::questions::generate;
use assetkg::agent::{Agent, Backend, Budget, ModelCache, Question, Step, ToolLimits, Toolbox};
use assetkg::augment::llm::OpenAiConfig;
use assetkg::embed::Embedder;
use assetkg::index::EntityIndex;
use assetkg::kb::KnowledgeBase;
use assetkg::vocab::compact;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

/// Which model drives the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The embedded GGUF model (default SmolLM2-135M-Instruct) choosing among the planner's
    /// candidate actions: offline, the default.
    Gguf,
    /// The embedded GGUF model writing free-form ReAct (small models do poorly; for comparison).
    GgufReact,
    /// An OpenAI-compatible endpoint (ASSETKG_LLM_BASE_URL, ASSETKG_LLM_MODEL, ASSETKG_LLM_API_KEY).
    Openai,
    /// The planner alone, no model.
    Planner,
    /// (eval-agent only) the GGUF model scoring the options directly, without tools.
    ModelOnly,
}

/// Options shared by `ask` and `eval-agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The GGUF chat model file.
    #[arg(long, env = "ASSETKG_GGUF", default_value = DEFAULT_GGUF)]
    gguf: PathBuf,
    /// Most tool steps per question.
    #[arg(long, default_value_t = 8)]
    max_steps: usize,
    /// Time limit per question, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// `assetkg ask`.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question.
    question: String,
    /// An answer option (repeat 2–5 times for a multiple-choice question).
    #[arg(long = "option")]
    options: Vec<String>,
    /// Which model drives the agent.
    #[arg(long, value_enum, env = "ASSETKG_AGENT_BACKEND", default_value_t = BackendKind::Gguf)]
    backend: BackendKind,
    #[command(flatten)]
    agent: AgentArgs,
    /// Print the answer, citations and trace as JSON.
    #[arg(long)]
    json: bool,
}

/// `assetkg eval-agent`.
#[derive(Debug, Args)]
pub struct EvalAgentArgs {
    /// Backends to evaluate (repeatable).
    #[arg(long = "backend", value_enum, default_values_t = [BackendKind::Gguf, BackendKind::Planner, BackendKind::ModelOnly])]
    backends: Vec<BackendKind>,
    #[command(flatten)]
    agent: AgentArgs,
    /// Report location: writes OUT.json, OUT.md, OUT.png and OUT-questions.json.
    #[arg(long, default_value = "docs/agent-eval")]
    out: PathBuf,
    /// Seed of the question set.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Only the first N multiple-choice and N open questions (a quick check).
    #[arg(long)]
    limit: Option<usize>,
}

fn backend(kind: BackendKind, args: &AgentArgs) -> Result<Backend> {
    Ok(match kind {
        BackendKind::Gguf => Backend::Gguf(args.gguf.clone()),
        BackendKind::GgufReact => Backend::GgufFreeForm(args.gguf.clone()),
        BackendKind::Openai => Backend::OpenAi(
            OpenAiConfig::from_env().context("configuring the OpenAI-compatible backend")?,
        ),
        BackendKind::Planner => Backend::Planner,
        BackendKind::ModelOnly => {
            anyhow::bail!("model-only is a baseline of eval-agent, not an agent")
        }
    })
}

/// The tools over an opened KB and index.
pub fn toolbox(
    kb: KnowledgeBase,
    index: EntityIndex,
    embedder: Arc<dyn Embedder>,
    items: usize,
) -> Result<Toolbox> {
    let linker = Linker::build(&kb).context("reading the entity names")?;
    Ok(Toolbox {
        kb: Arc::new(kb),
        index: Arc::new(index),
        embedder,
        linker: Arc::new(linker),
        limits: ToolLimits {
            items,
            ..ToolLimits::default()
        },
    })
}

fn budget(args: &AgentArgs) -> Budget {
    Budget {
        max_steps: args.max_steps,
        time: std::time::Duration::from_secs(args.timeout),
        ..Budget::default()
    }
}

fn print_step(step: &Step) {
    match (&step.action, &step.observation) {
        (Some(action), Some(observation)) => {
            let short: String = observation.text.chars().take(400).collect();
            eprintln!(
                "step {}: {}\n  action: {} {}\n  observation: {short}",
                step.index,
                step.thought,
                action.tool(),
                action.input()
            );
        }
        _ => eprintln!("step {}: {}", step.index, step.thought),
    }
}

/// Runs `assetkg ask`.
pub async fn ask(args: AskArgs, tools: Toolbox) -> Result<()> {
    anyhow::ensure!(
        args.options.is_empty() || (2..=5).contains(&args.options.len()),
        "give 2 to 5 --option values (or none for an open question), not {}",
        args.options.len()
    );
    let models = ModelCache::default();
    let agent = Agent {
        policy: models.policy(&backend(args.backend, &args.agent)?)?,
        tools,
        budget: budget(&args.agent),
    };
    let question = Question {
        text: args.question,
        options: args.options,
    };
    let show = !args.json;
    let answer = agent
        .ask(&question, &mut |step| {
            if show {
                print_step(step)
            }
        })
        .await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!("{}", answer.text);
    if !answer.entities.is_empty() {
        println!("\nentities:");
        for e in &answer.entities {
            println!("  {} ({}, {})", e.label, e.kind, compact(&e.iri));
        }
    }
    if !answer.facts.is_empty() {
        println!("facts:");
        for f in &answer.facts {
            let sources: Vec<String> = f
                .provenance
                .iter()
                .map(|p| p.source_label.clone().unwrap_or_else(|| compact(&p.graph)))
                .collect();
            println!(
                "  {} [{}; {}]",
                f.display(),
                f.vetting_status,
                sources.join(", ")
            );
        }
    }
    println!(
        "({} steps, {} ms, {}, {:?})",
        answer.steps.len(),
        answer.elapsed_ms,
        answer.backend,
        answer.stopped
    );
    Ok(())
}

/// Runs `assetkg eval-agent`.
pub async fn eval_agent(args: EvalAgentArgs, tools: Toolbox) -> Result<()> {
    let mut set = generate(&tools.kb, args.seed)?;
    if let Some(n) = args.limit {
        set.choice.truncate(n);
        set.open.truncate(n);
    }
    let (dir, stem) = super::datasets::report_location(&args.out, "agent-eval");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{stem}-questions.json")),
        serde_json::to_string_pretty(&set)?,
    )?;
    eprintln!(
        "question set: {} multiple-choice, {} open (seed {})",
        set.choice.len(),
        set.open.len(),
        args.seed
    );
    let models = ModelCache::default();
    let mut report = AgentReport {
        generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        kb_version: set.kb_version.clone(),
        choice_questions: set.choice.len(),
        open_questions: set.open.len(),
        backends: Vec::new(),
    };
    for kind in &args.backends {
        let label = format!("{kind:?}");
        if *kind == BackendKind::ModelOnly {
            let model = models.gguf(&args.agent.gguf)?;
            let bar = assetkg::progress::bar(
                true,
                set.choice.len() as u64,
                "{msg} [{bar:30}] {pos}/{len} {elapsed}",
                &label,
            );
            report
                .backends
                .push(run_model_only(model, &set, &bar).await);
            bar.finish();
            continue;
        }
        let agent = Agent {
            policy: models.policy(&backend(*kind, &args.agent)?)?,
            tools: tools.clone(),
            budget: budget(&args.agent),
        };
        let total = (set.choice.len() + set.open.len()) as u64;
        let bar = assetkg::progress::bar(
            true,
            total,
            "{msg} [{bar:30}] {pos}/{len} {elapsed}",
            &label,
        );
        report.backends.push(run_agent(&agent, &set, &bar).await);
        bar.finish();
    }
    println!("{}", report.table());
    let notes = "The questions are generated from the KB's expert relevance judgments \
(FailureSensorIQ, CC BY 4.0), so the evaluation measures whether the agent finds and uses the \
right graph facts (entity linking, tool choice, selection vs elimination phrasing), not \
knowledge beyond the KB. `gguf` = SmolLM2-135M-Instruct choosing among the planner's candidate \
actions and answer options by log-probability, combined with the graph evidence; `planner` = the \
same plan without a model; `model only` = the model scoring the options with no tools.";
    report.write(&dir, &stem, notes)?;
    eprintln!("wrote {}/{stem}.{{md,json,png}}", dir.display());
    Ok(())
}
