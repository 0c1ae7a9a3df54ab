//! Command-line interface: one clap subcommand per task of a knowledge engineer. Commands print
//! for people by default and JSON with `--json`; a failed check exits non-zero.

mod agent;
mod datasets;
mod train;

use anyhow::{Context, Result};
use assetkg::api::config::ServiceConfig;
use assetkg::config::Config;
use assetkg::embed::{load_embedder, Backend};
use assetkg::index::{
    entity_documents, resolve_asset, EntityIndex, Hit, SearchMode, SearchRequest,
};
use assetkg::kb::backend::RemoteSparqlConfig;
use assetkg::kb::{matrix, ExportFormat, KnowledgeBase, LoadReport, OutputFormat, Violation};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// assetkg: knowledge graph and semantic retrieval for industrial asset maintenance.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Data directory (the on-disk store lives in DIR/store).
    #[arg(long, env = "ASSETKG_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// Directory with assetkg.ttl (ontology) and shapes.ttl (SHACL).
    #[arg(
        long,
        env = "ASSETKG_ONTOLOGY_DIR",
        default_value = "ontology",
        global = true
    )]
    ontology_dir: PathBuf,
    /// Directory of the bundled knowledge base (*.ttl).
    #[arg(long, env = "ASSETKG_KB_DIR", default_value = "kb", global = true)]
    kb_dir: PathBuf,
    /// Embedding model directory (sentence-transformers layout).
    #[arg(long = "model", env = "ASSETKG_MODEL_DIR", global = true)]
    model_dir: Option<PathBuf>,
    /// ONNX Runtime library for fastembed.
    #[arg(long, env = "ASSETKG_ORT_DYLIB", global = true)]
    ort_dylib: Option<PathBuf>,
    /// Entity index location: a LanceDB directory (default DATA_DIR/index).
    #[arg(long, env = "ASSETKG_INDEX_URI", global = true)]
    index_uri: Option<String>,
    /// A LanceDB storage option for the index, KEY=VALUE, repeatable (for an s3:// index:
    /// aws_endpoint, aws_region, aws_access_key_id, aws_secret_access_key, allow_http…; the
    /// AWS_* environment variables are read too).
    #[arg(long = "index-option", env = "ASSETKG_INDEX_OPTIONS", value_delimiter = ',', value_parser = key_value, global = true, hide_env_values = true)]
    index_options: Vec<(String, String)>,
    /// Keep the graph in a SPARQL 1.1 store instead of DATA_DIR/store: its query endpoint
    /// (e.g. http://localhost:7878/query for an Oxigraph server).
    #[arg(long, env = "ASSETKG_SPARQL_QUERY_URL", global = true)]
    sparql_query_url: Option<String>,
    /// The SPARQL 1.1 update endpoint of that store (default: the query endpoint).
    #[arg(
        long,
        env = "ASSETKG_SPARQL_UPDATE_URL",
        global = true,
        requires = "sparql_query_url"
    )]
    sparql_update_url: Option<String>,
    /// The Authorization header sent to that store (e.g. "Bearer TOKEN" or "Basic BASE64").
    #[arg(
        long,
        env = "ASSETKG_SPARQL_AUTHORIZATION",
        global = true,
        hide_env_values = true
    )]
    sparql_authorization: Option<String>,
    /// Log format.
    #[arg(long, env = "ASSETKG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Roles a token can have.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenRole {
    /// Read only.
    Reader,
    /// Read and curate.
    Curator,
    /// Everything.
    Admin,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import the FailureSensorIQ relevance matrix into kb/failuresensoriq.ttl.
    ImportMatrix {
        /// The matrix as CSV (asset,failure_mode,sensor,relevant).
        #[arg(
            long,
            default_value = "kb/sources/failuresensoriq/fm_sensor_relevance.csv"
        )]
        matrix: PathBuf,
        /// Raw name → canonical name table (kind,raw,canonical).
        #[arg(long, default_value = "kb/mappings/failuresensoriq-names.csv")]
        names: PathBuf,
        /// The Turtle file to write.
        #[arg(long, default_value = "kb/failuresensoriq.ttl")]
        out: PathBuf,
    },
    /// Validate and load RDF files into the store (default: the bundled ontology and KB).
    /// All files load in one transaction: on any error nothing is written.
    Load {
        /// Files to load (.ttl, .trig, .nt, .nq, .rdf/.owl, .jsonld).
        paths: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check RDF files against the SHACL shapes without writing anything; exits 1 on violations.
    /// Without paths, checks the bundled ontology and KB on their own; with paths, checks them
    /// together with what the store holds.
    Validate {
        /// Files to check.
        paths: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a read-only SPARQL query (project prefixes are predeclared).
    Sparql {
        /// The query text.
        query: Option<String>,
        /// Read the query from a file instead.
        #[arg(long, conflicts_with = "query")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Counts: entities per class, relations, provenance and vetting coverage, fact graphs.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Embed the KB entities into the index; only entities whose text or model changed are
    /// embedded again, and a model change rebuilds the index.
    Index {
        /// Which implementation embeds.
        #[arg(long, value_enum, default_value_t = Backend::Fastembed)]
        backend: Backend,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search the KB entities by meaning, by words, or both.
    Search {
        /// What to look for.
        text: String,
        /// Only entities of this kind (repeatable): sensor, failure_mode, failure_mode_class,
        /// failure_description, maintainable_item, component_kind, subunit, equipment_class,
        /// equipment_type, equipment_category.
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// Only entities of this asset (equipment class label, e.g. "electric motor", or IRI).
        #[arg(long)]
        asset: Option<String>,
        /// Search mode.
        #[arg(long, value_enum, default_value_t = SearchMode::Hybrid)]
        mode: SearchMode,
        /// Number of results.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Which implementation embeds the query (must match the index's model).
        #[arg(long, value_enum, default_value_t = Backend::Fastembed)]
        backend: Backend,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The nine task datasets.
    #[command(subcommand)]
    Tasks(datasets::TasksCommand),
    /// Query augmentation: entity descriptions.
    #[command(subcommand)]
    Augment(datasets::AugmentCommand),
    /// Evaluate retrieval on the task datasets (BM25, the base model with and without
    /// augmentation, and the model given with the global `--model DIR`, if any): prints a table
    /// and writes JSON, Markdown and a PNG chart.
    Eval(datasets::EvalArgs),
    /// Fine-tune an embedding model on the task datasets from a recipe (resumes an
    /// interrupted run of the same recipe); writes a sentence-transformers directory + ONNX.
    Train(train::TrainArgs),
    /// Run ablation sweeps (p_desc, positive ratio, loss, seeds) of a base recipe; writes a
    /// table and charts.
    Ablate(train::AblateArgs),
    /// Ask the ReAct agent a question (open, or multiple-choice with --option): it plans over
    /// the graph and search tools and answers with the graph facts it used; the steps go to
    /// stderr as they happen.
    Ask(agent::AskArgs),
    /// Evaluate the agent on a question set generated from the KB (multiple-choice and open
    /// troubleshooting questions), per backend: a table, JSON, Markdown and a PNG chart.
    EvalAgent(agent::EvalAgentArgs),
    /// Serve GraphQL (/graphql, GraphiQL at /), the SPARQL 1.1 Protocol (/sparql), /metrics
    /// and health checks (/healthz, /readyz) until Ctrl-C or SIGTERM. The index is first
    /// brought in line with the store (only changed entities are embedded).
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, env = "ASSETKG_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// Service configuration (TOML: tokens, anonymous reading, limits, CORS); without it,
        /// anonymous clients may read and nobody may write.
        #[arg(long, env = "ASSETKG_SERVICE_CONFIG")]
        service_config: Option<PathBuf>,
        /// Which implementation embeds queries (must match the index's model).
        #[arg(long, value_enum, default_value_t = Backend::Fastembed)]
        backend: Backend,
    },
    /// The version log: one line per commit (load or curation edit), oldest first.
    Versions {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The changes between two KB versions (ids `sha256:…` or sequence numbers), as an RDF
    /// Patch (default) or JSON.
    Diff {
        /// The older version.
        from: String,
        /// The newer version.
        to: String,
        /// Print JSON (added and removed N-Quads) instead of an RDF Patch.
        #[arg(long)]
        json: bool,
    },
    /// Create a bearer token: prints the token once and the configuration entry (with its
    /// SHA-256 only) to paste into the service configuration.
    Token {
        /// Who will hold it (recorded as the agent of their edits).
        #[arg(long)]
        name: String,
        /// Its role.
        #[arg(long, value_enum)]
        role: TokenRole,
    },
    /// Write the knowledge base to stdout or a file.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Trig)]
        format: ExportFormat,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Include the RDFS entailments materialised at load time.
        #[arg(long)]
        with_inferred: bool,
    },
}

/// Sets up `tracing` to stderr; `RUST_LOG` filters (default: our `info`, and only warnings
/// from the storage crates, whose `info` lines trace every file they write).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lance=warn,lancedb=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs one command.
pub fn run(args: Args) -> Result<ExitCode> {
    // `--model base` (or no `--model`) means the base model; `eval` needs to know which.
    let candidate_model = args
        .model_dir
        .clone()
        .filter(|dir| dir.as_os_str() != "base");
    let config = Config::new(args.data_dir, args.ontology_dir, args.kb_dir)?.with_models(
        candidate_model.clone(),
        args.ort_dylib,
        args.index_uri,
    );
    let remote_graph = args.sparql_query_url.as_ref().map(|query_url| {
        let update_url = args
            .sparql_update_url
            .clone()
            .unwrap_or_else(|| query_url.clone());
        let mut remote = RemoteSparqlConfig::new(query_url.clone(), update_url);
        remote.authorization = args.sparql_authorization.clone();
        remote
    });
    let open = || -> Result<KnowledgeBase> {
        match &remote_graph {
            Some(remote) => KnowledgeBase::remote(remote.clone(), &config.shapes_file())
                .with_context(|| format!("opening the graph at {}", remote.query_url)),
            None => KnowledgeBase::open(&config.store_dir(), &config.shapes_file())
                .with_context(|| format!("opening the store in {}", config.store_dir().display())),
        }
    };
    match args.command {
        Command::ImportMatrix {
            matrix: csv,
            names,
            out,
        } => {
            let report = matrix::import_to_file(&csv, &names, &out)?;
            println!(
                "wrote {}: {} cells ({} relevant, {} not relevant), {} assets, {} failure modes, {} sensors, {} triples",
                out.display(),
                report.cells,
                report.relevant,
                report.not_relevant,
                report.assets,
                report.failure_modes,
                report.sensors,
                report.triples
            );
            println!("data: {}", matrix::CREDIT);
        }
        Command::Load { paths, json } => {
            let paths = if paths.is_empty() {
                config.bundled_files()?
            } else {
                paths
            };
            let kb = open()?;
            tracing::info!(files = paths.len(), "loading");
            let report = kb.load_files(&paths)?;
            print_report(&report, json, "loaded")?;
        }
        Command::Validate { paths, json } => {
            let (kb, paths) = if paths.is_empty() {
                (
                    KnowledgeBase::in_memory(&config.shapes_file())?,
                    config.bundled_files()?,
                )
            } else if remote_graph.is_some() || config.store_dir().exists() {
                (open()?, paths)
            } else {
                (KnowledgeBase::in_memory(&config.shapes_file())?, paths)
            };
            let report = kb.check_files(&paths)?;
            print_report(&report, json, "checked")?;
            if !report.violations.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Sparql {
            query,
            file,
            format,
        } => {
            let text = match (query, file) {
                (Some(q), _) => q,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, None) => anyhow::bail!("give a query, or --file FILE"),
            };
            let outcome = open()?.query(&text)?;
            let mut out = std::io::stdout().lock();
            outcome.write(format, &mut out)?;
            out.flush()?;
        }
        Command::Stats { json } => {
            let stats = open()?.stats()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{stats}");
            }
        }
        Command::Index { backend, json } => {
            let kb = open()?;
            let docs = entity_documents(&kb)?;
            anyhow::ensure!(
                !docs.is_empty(),
                "the store in {} holds no entities: run `assetkg load` first",
                config.store_dir().display()
            );
            let embedder = load_embedder(backend, &config.model_dir, &config.ort_dylib)
                .with_context(|| format!("loading the model in {}", config.model_dir.display()))?;
            let report = runtime()?.block_on(async {
                let index = EntityIndex::open_with(&config.index_uri, &args.index_options).await?;
                index.sync(&docs, embedder.as_ref(), !json).await
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "index {}: {} added, {} updated, {} removed, {} unchanged{} (model {})",
                    config.index_uri,
                    report.added,
                    report.updated,
                    report.removed,
                    report.unchanged,
                    if report.model_rebuild {
                        ", rebuilt for a new model"
                    } else {
                        ""
                    },
                    embedder.model_id()
                );
            }
        }
        Command::Search {
            text,
            kinds,
            asset,
            mode,
            limit,
            backend,
            json,
        } => {
            let mut request = SearchRequest::new(text)
                .mode(mode)
                .kinds(kinds)
                .limit(limit);
            if let Some(name) = asset {
                let iri = resolve_asset(&open()?, &name)?.with_context(|| {
                    format!(
                        "no equipment class is called {name:?} (try `assetkg sparql` to list them)"
                    )
                })?;
                request = request.asset(iri);
            }
            let embedder = load_embedder(backend, &config.model_dir, &config.ort_dylib)
                .with_context(|| format!("loading the model in {}", config.model_dir.display()))?;
            let hits = runtime()?.block_on(async {
                let index = EntityIndex::open_with(&config.index_uri, &args.index_options).await?;
                anyhow::ensure!(
                    !index.is_empty().await?,
                    "the index {} is empty: run `assetkg index` first",
                    config.index_uri
                );
                Ok(index.search(&request, embedder.as_ref()).await?)
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
            } else {
                print_hits(&hits);
            }
        }
        Command::Tasks(command) => datasets::tasks(command, &open()?)?,
        Command::Augment(command) => datasets::augment(command, &open()?)?,
        Command::Eval(eval) => datasets::eval(eval, &open()?, &config, candidate_model)?,
        Command::Ask(ask) => {
            let tools = agent_tools(open()?, &config, &args.index_options, 10)?;
            runtime()?.block_on(agent::ask(ask, tools))?;
        }
        Command::EvalAgent(eval) => {
            let tools = agent_tools(open()?, &config, &args.index_options, 25)?;
            runtime()?.block_on(agent::eval_agent(eval, tools))?;
        }
        Command::Serve {
            bind,
            service_config,
            backend,
        } => {
            let service = match &service_config {
                Some(path) => ServiceConfig::from_file(path)?,
                None => ServiceConfig::default(),
            };
            let embedder = load_embedder(backend, &config.model_dir, &config.ort_dylib)
                .with_context(|| format!("loading the model in {}", config.model_dir.display()))?;
            serve(
                open()?,
                &config.index_uri,
                &args.index_options,
                embedder.into(),
                service,
                &bind,
            )?
        }
        Command::Versions { json } => {
            let versions = open()?.versions()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&versions)?);
            } else {
                let mut table = comfy_table::Table::new();
                table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
                table.set_header([
                    "#", "time", "agent", "action", "+", "−", "version", "reason",
                ]);
                for v in &versions {
                    table.add_row([
                        v.seq.to_string(),
                        v.time.clone(),
                        v.agent_label.clone(),
                        v.action.clone(),
                        v.added.to_string(),
                        v.removed.to_string(),
                        v.id.chars().take(19).collect(),
                        v.reason.chars().take(60).collect(),
                    ]);
                }
                println!("{table}");
            }
        }
        Command::Diff { from, to, json } => {
            let diff = open()?.diff(&from, &to)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&diff)?);
            } else {
                print!("{}", diff.to_rdf_patch());
            }
        }
        Command::Token { name, role } => {
            let (token, digest) = assetkg::api::auth::new_token();
            let role = format!("{role:?}").to_lowercase();
            eprintln!("token for {name} (shown once; store it now):");
            println!("{token}");
            eprintln!("\nadd to the service configuration:\n");
            eprintln!("[[tokens]]\nname = {name:?}\nrole = \"{role}\"\nsha256 = \"{digest}\"");
        }
        Command::Train(args) => train::run_train(args, &open()?)?,
        Command::Ablate(args) => train::run_ablate(args, &open()?)?,
        Command::Export {
            format,
            out,
            with_inferred,
        } => {
            let kb = open()?;
            match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    kb.export(format, with_inferred, &mut writer)?;
                    writer.flush()?;
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    kb.export(format, with_inferred, &mut out)?;
                    out.flush()?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the HTTP service on `bind` until Ctrl-C or SIGTERM.
fn serve(
    kb: KnowledgeBase,
    index_uri: &str,
    index_options: &[(String, String)],
    embedder: std::sync::Arc<dyn assetkg::embed::Embedder>,
    service: ServiceConfig,
    bind: &str,
) -> Result<()> {
    runtime()?.block_on(async {
        let index = EntityIndex::open_with(index_uri, index_options).await?;
        let services =
            assetkg::api::Services::start(std::sync::Arc::new(kb), index, embedder, service)
                .await?;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("listening on {bind}"))?;
        let address = listener.local_addr()?;
        tracing::info!(
            "serving on http://{address} (GraphiQL at /, GraphQL at /graphql, SPARQL at /sparql, metrics at /metrics)"
        );
        let state = assetkg::api::AppState::new(services);
        assetkg::api::serve(state, listener, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// `KEY=VALUE` as a pair.
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// A runtime for the async index; the rest of the CLI is synchronous.
/// The agent's tools over the store, the index and its model (`items` per search).
fn agent_tools(
    kb: KnowledgeBase,
    config: &Config,
    index_options: &[(String, String)],
    items: usize,
) -> Result<assetkg::agent::Toolbox> {
    let embedder = load_embedder(Backend::Fastembed, &config.model_dir, &config.ort_dylib)
        .with_context(|| format!("loading the model in {}", config.model_dir.display()))?;
    let index = runtime()?.block_on(async {
        let index = EntityIndex::open_with(&config.index_uri, index_options).await?;
        anyhow::ensure!(
            !index.is_empty().await?,
            "the index {} is empty: run `assetkg index` first",
            config.index_uri
        );
        Ok(index)
    })?;
    agent::toolbox(kb, index, embedder.into(), items)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

fn print_hits(hits: &[Hit]) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(["#", "score", "kind", "label", "iri"]);
    for (rank, hit) in hits.iter().enumerate() {
        table.add_row([
            (rank + 1).to_string(),
            format!("{:.4}", hit.score),
            hit.kind.clone(),
            hit.label.clone(),
            hit.iri.clone(),
        ]);
    }
    println!("{table}");
}

fn print_report(report: &LoadReport, json: bool, verb: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for file in &report.files {
        println!(
            "{verb} {} ({} triples → {})",
            file.path.display(),
            file.triples,
            file.graphs.join(", ")
        );
    }
    println!(
        "{} asserted triples, {} RDFS entailments, {} violation(s){}",
        report.asserted,
        report.inferred,
        report.violations.len(),
        if report.committed { ", committed" } else { "" }
    );
    if report.committed {
        println!("kb version {}", report.kb_version);
    }
    if !report.violations.is_empty() {
        print!("{}", Violation::summary(&report.violations, usize::MAX));
    }
    Ok(())
}
