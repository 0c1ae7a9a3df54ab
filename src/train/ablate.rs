//! Ablations like the paper's: one base recipe, then sweeps that change one thing each — the
//! description probability p_desc, the positive ratio of contrastive batches, the loss — and
//! the base recipe under several seeds for the spread. Every run is scored on the test split;
//! the results come as JSON, a Markdown table and charts.

use super::encoder::FrozenCache;
use super::recipe::{LossKind, Recipe};
use super::trainer::{train, RunOptions, TrainOutcome};
use super::validate::headline;
use super::{TrainError, TrainResult};
use crate::augment::render::Describe;
use crate::eval::metrics::Scores;
use crate::eval::report::{grouped_bar_chart, line_chart, BarChart, LineChart, TaskScores};
use crate::tasks::{Dataset, Split};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// An ablation plan (TOML): the base recipe and the values each sweep tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The recipe every run starts from (its `out` is not written).
    pub base: Recipe,
    #[serde(default)]
    pub sweeps: Sweeps,
}

/// The values of each sweep; an empty list skips it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sweeps {
    pub p_desc: Vec<f64>,
    pub positive_ratio: Vec<f64>,
    pub loss: Vec<LossKind>,
    pub seeds: Vec<u64>,
    /// Frozen (cached) lower layers: what the speed-up costs in quality.
    pub frozen_layers: Vec<usize>,
}

impl Plan {
    /// Reads and checks `path` (every run's recipe must pass the recipe checks).
    pub fn load(path: &Path) -> TrainResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let plan: Plan = toml::from_str(&text).map_err(|e| TrainError::Recipe {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        for run in plan.runs() {
            run.recipe.check().map_err(|message| TrainError::Recipe {
                path: path.to_owned(),
                message: format!("sweep {} = {}: {message}", run.sweep, run.value),
            })?;
        }
        Ok(plan)
    }

    /// Every run of the plan, sweep by sweep.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs = Vec::new();
        let mut add = |sweep: &str, value: String, x: f64, recipe: Recipe| {
            runs.push(Run {
                sweep: sweep.to_owned(),
                value,
                x,
                recipe,
            })
        };
        for &p in &self.sweeps.p_desc {
            let mut r = self.base.clone();
            r.data.p_desc = p;
            add("p_desc", format!("{p}"), p, r);
        }
        for &ratio in &self.sweeps.positive_ratio {
            let mut r = self.base.clone();
            r.schedule.positive_ratio = ratio;
            add("positive_ratio", format!("{ratio}"), ratio, r);
        }
        for (i, &loss) in self.sweeps.loss.iter().enumerate() {
            let mut r = self.base.clone();
            r.schedule.loss = loss;
            if loss == LossKind::MnrlThenContrastive && r.schedule.mnrl_epochs >= r.schedule.epochs
            {
                // A two-stage run needs a contrastive epoch: give it one more.
                r.schedule.epochs = r.schedule.mnrl_epochs + 1;
            }
            add("loss", loss.as_str().to_owned(), i as f64, r);
        }
        for &frozen in &self.sweeps.frozen_layers {
            let mut r = self.base.clone();
            r.frozen_layers = frozen;
            add("frozen_layers", format!("{frozen}"), frozen as f64, r);
        }
        for &seed in &self.sweeps.seeds {
            let mut r = self.base.clone();
            r.seed = seed;
            add("seed", format!("{seed}"), seed as f64, r);
        }
        runs
    }
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct Run {
    pub sweep: String,
    pub value: String,
    pub x: f64,
    pub recipe: Recipe,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub sweep: String,
    pub value: String,
    pub x: f64,
    pub fingerprint: String,
    /// Test scores of the kept weights, per task and mean.
    pub test_tasks: Vec<TaskScores>,
    pub test: Scores,
    pub validation_selection: f64,
    pub best_step: usize,
    pub steps: usize,
    pub seconds: f64,
}

/// All results of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AblationReport {
    pub plan: Plan,
    pub created: String,
    pub runs: Vec<RunResult>,
    /// Mean number of relevant items per test query, by task: the paper's finding on losses
    /// depends on it.
    pub positives_per_query: BTreeMap<String, f64>,
}

/// Runs every run of `plan` (a recipe repeated across sweeps runs once), `on_result` after
/// each. The frozen-layer cache is shared by all runs.
pub fn ablate(
    plan: &Plan,
    dataset: &Dataset,
    descriptions: &dyn Describe,
    progress: bool,
    mut on_result: impl FnMut(usize, usize, &RunResult),
) -> TrainResult<AblationReport> {
    let runs = plan.runs();
    let hidden = crate::embed::ModelDir::open(&plan.base.base_model)?
        .config
        .hidden_size;
    let mut caches: HashMap<usize, FrozenCache> = HashMap::new();
    let mut done: HashMap<String, TrainOutcome> = HashMap::new();
    let mut results = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let fingerprint = run.recipe.fingerprint();
        if !done.contains_key(&fingerprint) {
            let cache = caches
                .entry(run.recipe.frozen_layers)
                .or_insert_with(|| FrozenCache::new(run.recipe.frozen_layers, hidden));
            let options = RunOptions {
                progress,
                resume: false,
                write_model: false,
                stop_after: None,
            };
            let outcome = train(&run.recipe, dataset, descriptions, cache, options)?.outcome;
            done.insert(fingerprint.clone(), outcome);
        }
        let outcome = &done[&fingerprint];
        let result = RunResult {
            sweep: run.sweep.clone(),
            value: run.value.clone(),
            x: run.x,
            fingerprint,
            test_tasks: outcome.test.tasks.clone(),
            test: outcome.test.mean,
            validation_selection: outcome.validation.selection,
            best_step: outcome.best_step,
            steps: outcome.steps,
            seconds: outcome.seconds,
        };
        on_result(i + 1, runs.len(), &result);
        results.push(result);
    }
    let mut positives: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for q in dataset.queries.iter().filter(|q| q.split == Split::Test) {
        let entry = positives.entry(q.task.to_string()).or_default();
        entry.0 += q.positives.len();
        entry.1 += 1;
    }
    Ok(AblationReport {
        plan: plan.clone(),
        created: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        runs: results,
        positives_per_query: positives
            .into_iter()
            .map(|(task, (sum, n))| (task, sum as f64 / n.max(1) as f64))
            .collect(),
    })
}

impl AblationReport {
    /// The runs of `sweep`.
    pub fn sweep(&self, sweep: &str) -> Vec<&RunResult> {
        self.runs.iter().filter(|r| r.sweep == sweep).collect()
    }

    /// The report as Markdown: one table per sweep (test split, in %), the seed spread, and
    /// the charts by file name.
    pub fn markdown(&self, stem: &str, command: &str) -> String {
        let pct = |v: f64| format!("{:.1}", v * 100.0);
        let mut md = format!(
            "# Fine-tuning ablations\n\n- Date: {}\n- Command: `{command}`\n- Base recipe \
             fingerprint: `{}`; each sweep changes one setting of it. Scores: test split, \
             unweighted mean over tasks, in %; the kept weights are the best on validation.\n",
            self.created,
            self.plan.base.fingerprint()
        );
        for (sweep, title) in [
            (
                "p_desc",
                "Description probability p_desc (query augmentation)",
            ),
            ("positive_ratio", "Positive ratio of contrastive batches"),
            ("loss", "Loss"),
            (
                "frozen_layers",
                "Frozen (cached) layers: speed against quality",
            ),
            ("seed", "Seeds (spread of the base recipe)"),
        ] {
            let runs = self.sweep(sweep);
            if runs.is_empty() {
                continue;
            }
            md.push_str(&format!(
                "\n## {title}\n\n| {sweep} | HIT@1 | MAP@100 | NDCG@10 | mean of 3 | kept step | minutes |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            ));
            for r in &runs {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {}/{} | {:.1} |\n",
                    r.value,
                    pct(r.test.hit_at_1),
                    pct(r.test.map_at_100),
                    pct(r.test.ndcg_at_10),
                    pct(headline(&r.test)),
                    r.best_step,
                    r.steps,
                    r.seconds / 60.0
                ));
            }
            if sweep == "seed" && runs.len() > 1 {
                let values: Vec<f64> = runs.iter().map(|r| headline(&r.test)).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (values.len() - 1) as f64;
                md.push_str(&format!(
                    "\nMean of 3 over seeds: {} ± {} (sample standard deviation).\n",
                    pct(mean),
                    pct(var.sqrt())
                ));
            }
            if sweep == "loss" {
                md.push_str(&self.per_task_table(&runs));
                md.push_str(&format!("\n![per-task NDCG@10 by loss]({stem}-loss.png)\n"));
            } else if sweep != "seed" {
                md.push_str(&format!("\n![{sweep} sweep]({stem}-{sweep}.png)\n"));
            }
        }
        md
    }

    /// NDCG@10 per task for each run of a sweep, with each task's mean number of positives.
    fn per_task_table(&self, runs: &[&RunResult]) -> String {
        let mut md = String::from(
            "\nNDCG@10 per task (test), in %, with the mean number of relevant items per query:\n\n| task | positives/query |",
        );
        for r in runs {
            md.push_str(&format!(" {} |", r.value));
        }
        md.push_str("\n| --- | ---: |");
        md.push_str(&" ---: |".repeat(runs.len()));
        md.push('\n');
        let mut tasks: Vec<String> = runs
            .first()
            .map(|r| r.test_tasks.iter().map(|t| t.task.clone()).collect())
            .unwrap_or_default();
        // Most positives per query first.
        let positives = |t: &String| self.positives_per_query.get(t).copied().unwrap_or(0.0);
        tasks.sort_by(|a, b| positives(b).total_cmp(&positives(a)));
        for task in tasks {
            md.push_str(&format!("| {task} | {:.1} |", positives(&task)));
            for r in runs {
                let v = r
                    .test_tasks
                    .iter()
                    .find(|t| t.task == task)
                    .map_or(f64::NAN, |t| t.scores.ndcg_at_10);
                md.push_str(&format!(" {:.1} |", v * 100.0));
            }
            md.push('\n');
        }
        md
    }

    /// Writes `dir/stem.json`, `dir/stem.md` and the charts; returns the paths written.
    pub fn write_all(&self, dir: &Path, stem: &str, command: &str) -> TrainResult<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let mut written = Vec::new();
        let json = serde_json::to_string_pretty(self).map_err(|e| TrainError::Json {
            what: "ablation report".into(),
            source: e,
        })?;
        let path = dir.join(format!("{stem}.json"));
        std::fs::write(&path, json).map_err(|e| TrainError::io(&path, e))?;
        written.push(path);
        let path = dir.join(format!("{stem}.md"));
        std::fs::write(&path, self.markdown(stem, command))
            .map_err(|e| TrainError::io(&path, e))?;
        written.push(path);
        for (sweep, label) in [
            ("p_desc", "p_desc"),
            ("positive_ratio", "share of positive pairs in a batch"),
            ("frozen_layers", "frozen lower layers (of 6)"),
        ] {
            let runs = self.sweep(sweep);
            if runs.len() < 2 {
                continue;
            }
            let metric = |name: &str, f: fn(&Scores) -> f64| {
                (
                    name.to_owned(),
                    runs.iter().map(|r| (r.x, f(&r.test) * 100.0)).collect(),
                )
            };
            let chart = LineChart {
                title: format!("Test scores by {sweep}"),
                x_label: label.to_owned(),
                y_label: "%".to_owned(),
                series: vec![
                    metric("HIT@1", |s| s.hit_at_1),
                    metric("MAP@100", |s| s.map_at_100),
                    metric("NDCG@10", |s| s.ndcg_at_10),
                ],
            };
            let path = dir.join(format!("{stem}-{sweep}.png"));
            line_chart(&path, &chart)?;
            written.push(path);
        }
        let losses = self.sweep("loss");
        if losses.len() > 1 {
            let groups: Vec<String> = losses[0]
                .test_tasks
                .iter()
                .map(|t| t.task.clone())
                .collect();
            let chart = BarChart {
                title: "Test NDCG@10 per task by loss".into(),
                y_label: "NDCG@10 (%)".into(),
                series: losses
                    .iter()
                    .map(|r| {
                        let values = groups
                            .iter()
                            .map(|g| {
                                r.test_tasks
                                    .iter()
                                    .find(|t| &t.task == g)
                                    .map_or(f64::NAN, |t| t.scores.ndcg_at_10 * 100.0)
                            })
                            .collect();
                        (r.value.clone(), values)
                    })
                    .collect(),
                groups,
                y_max: None,
            };
            let path = dir.join(format!("{stem}-loss.png"));
            grouped_bar_chart(&path, &chart)?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_expands_into_one_run_per_value() {
        let plan: Plan = toml::from_str(
            "[base]\nout = \"x\"\n[base.schedule]\nepochs = 1\n[sweeps]\np_desc = [0.0, 0.4]\n\
             positive_ratio = [0.3]\nloss = [\"mnrl\", \"mnrl-then-contrastive\"]\nseeds = [7]\n\
             frozen_layers = [5]\n",
        )
        .unwrap();
        let runs = plan.runs();
        assert_eq!(runs.len(), 7);
        assert_eq!(runs[0].recipe.data.p_desc, 0.0);
        assert_eq!(runs[2].recipe.schedule.positive_ratio, 0.3);
        // The two-stage run gets the contrastive epoch it needs.
        assert_eq!(runs[4].recipe.schedule.epochs, 2);
        assert!(runs[4].recipe.check().is_ok());
        assert_eq!(runs[5].recipe.frozen_layers, 5);
        assert_eq!(runs[6].recipe.seed, 7);
        // The base recipe repeated by two sweeps has one fingerprint.
        assert_eq!(runs[1].recipe.fingerprint(), plan.base.fingerprint());
    }
}
