//! Evaluation reports: the result types of an evaluation run ([`EvalReport`], [`SystemResult`],
//! [`TaskScores`]) and what people read of them: a terminal table, a Markdown document, the
//! JSON they are kept as, and PNG charts.
//!
//! The chart functions ([`grouped_bar_chart`], [`line_chart`]) are generic so that ablation
//! reports (positive-ratio sweeps, loss comparisons) draw with the same look. Text is drawn
//! with plotters' `ab_glyph` backend from a TTF file read at run time ([`chart_font_path`]),
//! which avoids linking fontconfig.
//!
//! Metric values are fractions in [0, 1]; every output shows them as percentages with one
//! decimal (62.4), and gains as percentage points (+41.3).

use super::metrics::Scores;
use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The environment variable that overrides [`DEFAULT_FONT`].
pub const FONT_ENV: &str = "ASSETKG_CHART_FONT";

/// The TTF file charts are drawn with by default (Debian package `fonts-dejavu-core`).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The family plotters asks for by default, so every text of a chart uses the registered font.
const FONT: &str = "sans-serif";

const EVAL_CHART_SIZE: (u32, u32) = (1400, 1200);
const BAR_CHART_SIZE: (u32, u32) = (1400, 700);
const LINE_CHART_SIZE: (u32, u32) = (1200, 700);

/// A named metric read from the scores.
type Metric = (&'static str, fn(&Scores) -> f64);

/// The metrics shown per task: the paper's headline three.
const HEADLINE: [Metric; 3] = [
    ("HIT@1", |s| s.hit_at_1),
    ("MAP@100", |s| s.map_at_100),
    ("NDCG@10", |s| s.ndcg_at_10),
];

/// Series colours (matplotlib's default cycle, which readers of the paper's figures know).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// An error writing a report file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing chart {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    #[error("font {}: {message}", path.display())]
    Font { path: PathBuf, message: String },
    #[error("encoding report {}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The result type of this module.
pub type ReportResult<T> = Result<T, ReportError>;

/// The scores of one system on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    /// The task code (E2CAT, …, A2S).
    pub task: String,
    /// How many queries the scores are the mean of.
    pub queries: usize,
    pub scores: Scores,
}

/// The scores of one system (a retriever with a model) on every task it was run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemResult {
    /// What the reader calls it: "BM25", "MiniLM base + augmentation", …
    pub name: String,
    /// The model id, or "bm25".
    pub model: String,
    pub tasks: Vec<TaskScores>,
    /// The unweighted mean over `tasks`, so every task counts the same whatever its size.
    pub mean: Scores,
}

impl SystemResult {
    /// A result whose `mean` is the unweighted mean of `tasks`.
    pub fn new(name: impl Into<String>, model: impl Into<String>, tasks: Vec<TaskScores>) -> Self {
        let mean = Scores::mean(tasks.iter().map(|t| &t.scores));
        SystemResult {
            name: name.into(),
            model: model.into(),
            tasks,
            mean,
        }
    }

    /// The scores on `task`, if the system was run on it.
    pub fn task(&self, task: &str) -> Option<&TaskScores> {
        self.tasks.iter().find(|t| t.task == task)
    }
}

/// One evaluation run: several systems on the same split and corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub title: String,
    /// The split evaluated ("test", "validation").
    pub split: String,
    /// The version id of the knowledge base the tasks were built from.
    pub kb_version: String,
    /// Items in the one corpus every query is answered against.
    pub corpus_size: usize,
    /// The command line that produced the report, so it can be rerun.
    pub command: String,
    pub created: String,
    /// The systems; the first is the baseline gains are measured against.
    pub systems: Vec<SystemResult>,
}

/// The files [`EvalReport::write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub png: PathBuf,
}

impl EvalReport {
    /// The task codes of all systems, in the order they first appear.
    pub fn tasks(&self) -> Vec<&str> {
        let mut tasks: Vec<&str> = Vec::new();
        for t in self.systems.iter().flat_map(|s| &s.tasks) {
            if !tasks.contains(&t.task.as_str()) {
                tasks.push(&t.task);
            }
        }
        tasks
    }

    /// The query count of `task` (the first system's: all systems answer the same queries).
    fn queries(&self, task: &str) -> Option<usize> {
        self.systems
            .iter()
            .find_map(|s| s.task(task))
            .map(|t| t.queries)
    }

    /// The rows of the per-task tables: (label, query count, each system's scores), the tasks
    /// then "mean".
    fn rows(&self) -> Vec<(String, usize, Vec<Option<&Scores>>)> {
        let mut rows: Vec<_> = self
            .tasks()
            .into_iter()
            .map(|task| {
                let scores = self.systems.iter().map(|s| s.task(task).map(|t| &t.scores));
                (
                    task.to_owned(),
                    self.queries(task).unwrap_or(0),
                    scores.collect(),
                )
            })
            .collect();
        let total = rows.iter().map(|r| r.1).sum();
        rows.push((
            "mean".to_owned(),
            total,
            self.systems.iter().map(|s| Some(&s.mean)).collect(),
        ));
        rows
    }

    /// A terminal table: one row per task and a mean row, HIT@1, MAP@100 and NDCG@10 (%) of
    /// every system.
    pub fn table(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        let mut header = vec!["task".to_owned(), "queries".to_owned()];
        for system in &self.systems {
            header.extend(
                HEADLINE
                    .iter()
                    .map(|(metric, _)| format!("{}\n{metric}", system.name)),
            );
        }
        table.set_header(header);
        for (label, queries, scores) in self.rows() {
            let mut row = vec![label, queries.to_string()];
            row.extend(headline_cells(&scores));
            table.add_row(row);
        }
        for i in 1..2 + HEADLINE.len() * self.systems.len() {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        table.to_string()
    }

    /// The report as a Markdown document; `chart` is the file name of the PNG to embed.
    pub fn markdown(&self, chart: Option<&str>) -> String {
        let mut md = vec![
            format!("# {}", self.title),
            String::new(),
            format!("- Split: {}", self.split),
            format!(
                "- Corpus: {} items, the items of all tasks in one corpus",
                self.corpus_size
            ),
            format!("- KB version: `{}`", self.kb_version),
            format!("- Date: {}", self.created),
            "- Command:".to_owned(),
            String::new(),
            "  ```sh".to_owned(),
            format!("  {}", self.command),
            "  ```".to_owned(),
            String::new(),
            "## Summary".to_owned(),
            String::new(),
            format!(
                "Unweighted mean over the {} tasks, in %.",
                self.tasks().len()
            ),
            String::new(),
        ];
        let mut header = vec!["system".to_owned(), "model".to_owned()];
        header.extend(Scores::NAMES.iter().map(|n| (*n).to_owned()));
        md.extend(md_table(
            header,
            2,
            self.systems.iter().map(|s| {
                let mut row = vec![md_cell(&s.name), md_cell(&s.model)];
                row.extend(s.mean.values().map(pct));
                row
            }),
        ));
        if let Some(png) = chart {
            md.push(String::new());
            md.push(format!(
                "![HIT@1, MAP@100 and NDCG@10 per task and system]({png})"
            ));
        }

        md.extend([
            String::new(),
            "## Per task".to_owned(),
            String::new(),
            "HIT@1, MAP@100 and NDCG@10 in %; the mean row is the unweighted mean over tasks."
                .to_owned(),
            String::new(),
        ]);
        let mut header = vec!["task".to_owned(), "queries".to_owned()];
        for system in &self.systems {
            header.extend(
                HEADLINE
                    .iter()
                    .map(|(metric, _)| format!("{} {metric}", md_cell(&system.name))),
            );
        }
        md.extend(md_table(
            header,
            1,
            self.rows().into_iter().map(|(label, queries, scores)| {
                let mut row = vec![label, queries.to_string()];
                row.extend(headline_cells(&scores));
                row
            }),
        ));

        if let [first, later @ ..] = self.systems.as_slice() {
            if !later.is_empty() {
                md.extend([
                    String::new(),
                    format!("## Gain over {}", md_cell(&first.name)),
                    String::new(),
                    format!(
                        "Percentage points over {} on the mean over tasks.",
                        md_cell(&first.name)
                    ),
                    String::new(),
                ]);
                let mut header = vec!["system".to_owned()];
                header.extend(Scores::NAMES.iter().map(|n| (*n).to_owned()));
                md.extend(md_table(
                    header,
                    1,
                    later.iter().map(|s| {
                        let mut row = vec![md_cell(&s.name)];
                        row.extend(
                            s.mean
                                .values()
                                .iter()
                                .zip(first.mean.values())
                                .map(|(v, base)| points(v - base)),
                        );
                        row
                    }),
                ));
            }
        }
        md.push(String::new());
        md.join("\n")
    }

    /// The three panels of the report's chart: HIT@1, MAP@100 and NDCG@10 (%), with the tasks
    /// and "mean" as groups and one bar per system.
    fn panels(&self) -> Vec<BarChart> {
        let tasks = self.tasks();
        let mut groups: Vec<String> = tasks.iter().map(|t| (*t).to_owned()).collect();
        groups.push("mean".to_owned());
        HEADLINE
            .iter()
            .map(|(metric, value)| BarChart {
                title: format!("{metric} (%)"),
                y_label: format!("{metric} (%)"),
                groups: groups.clone(),
                series: self
                    .systems
                    .iter()
                    .map(|s| {
                        let per_task = tasks
                            .iter()
                            .map(|t| s.task(t).map_or(f64::NAN, |t| value(&t.scores) * 100.0));
                        let values = per_task.chain([value(&s.mean) * 100.0]).collect();
                        (s.name.clone(), values)
                    })
                    .collect(),
                y_max: None,
            })
            .collect()
    }

    /// Writes `<stem>.json` (pretty), `<stem>.md` and `<stem>.png` into `dir`, each through a
    /// temporary file renamed into place, so a failure never leaves half a file.
    pub fn write_all(&self, dir: &Path, stem: &str) -> ReportResult<ReportFiles> {
        let files = ReportFiles {
            json: dir.join(format!("{stem}.json")),
            markdown: dir.join(format!("{stem}.md")),
            png: dir.join(format!("{stem}.png")),
        };
        let json = serde_json::to_string_pretty(self).map_err(|source| ReportError::Json {
            path: files.json.clone(),
            source,
        })?;
        write_file(&files.json, format!("{json}\n").as_bytes())?;
        write_file(
            &files.markdown,
            self.markdown(Some(&format!("{stem}.png"))).as_bytes(),
        )?;
        draw_png(&files.png, EVAL_CHART_SIZE, |root| {
            draw_figure(root, &self.title, &self.panels(), true)
        })?;
        Ok(files)
    }
}

/// A grouped bar chart: one bar per series inside each group.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    /// The group labels, along the x axis.
    pub groups: Vec<String>,
    /// (legend name, one value per group); a non-finite value draws no bar.
    pub series: Vec<(String, Vec<f64>)>,
    /// The top of the value axis; 100 (percentages) when `None`.
    pub y_max: Option<f64>,
}

/// A chart of lines with point markers, for sweeps.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (legend name, (x, y) points in drawing order).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Draws `chart` into the PNG file `path` (1400×700).
pub fn grouped_bar_chart(path: &Path, chart: &BarChart) -> ReportResult<()> {
    draw_png(path, BAR_CHART_SIZE, |root| {
        draw_figure(root, &chart.title, std::slice::from_ref(chart), false)
    })
}

/// Draws `chart` into the PNG file `path` (1200×700); the value axis starts at 0 unless a
/// value is negative.
pub fn line_chart(path: &Path, chart: &LineChart) -> ReportResult<()> {
    draw_png(path, LINE_CHART_SIZE, |root| {
        let names: Vec<&str> = chart.series.iter().map(|(n, _)| n.as_str()).collect();
        let body = draw_header(root, &chart.title, &names)?;
        draw_lines(&body, chart)
    })
}

/// The font file charts use: `$ASSETKG_CHART_FONT`, else [`DEFAULT_FONT`].
pub fn chart_font_path() -> PathBuf {
    std::env::var_os(FONT_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_FONT), PathBuf::from)
}

/// The font file registered with plotters. A Mutex rather than a OnceLock: a failed load is
/// not remembered, so a fixed font path works on the next try in the same process.
static REGISTERED_FONT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Registers the font at `path` for all chart text, unless it is the one already registered.
fn register_font_file(path: &Path) -> ReportResult<()> {
    let mut registered = REGISTERED_FONT
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if registered.as_deref() == Some(path) {
        return Ok(());
    }
    let bytes = fs::read(path).map_err(|e| ReportError::Font {
        path: path.to_owned(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            format!("not found (install fonts-dejavu-core or set {FONT_ENV})")
        } else {
            e.to_string()
        },
    })?;
    // plotters keeps fonts for the whole process and wants 'static bytes; this leaks one font
    // file per distinct path, i.e. once in practice.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes).map_err(|_| {
        ReportError::Font {
            path: path.to_owned(),
            message: "not a TrueType or OpenType font".to_owned(),
        }
    })?;
    *registered = Some(path.to_owned());
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_file(path: &Path, bytes: &[u8]) -> ReportResult<()> {
    replace_with(path, |tmp| {
        fs::write(tmp, bytes).map_err(|source| ReportError::Write {
            path: path.to_owned(),
            source,
        })
    })
}

/// Runs `write` on a fresh temporary path next to `path`, then renames it to `path`; the
/// temporary file is removed when anything fails.
fn replace_with(path: &Path, write: impl FnOnce(&Path) -> ReportResult<()>) -> ReportResult<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The extension stays last: the PNG encoder picks the image format from it.
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp{ext}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        fs::rename(&tmp, path).map_err(|source| ReportError::Write {
            path: path.to_owned(),
            source,
        })
    });
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Draws a PNG of `size` pixels into `path` with `draw`, which gets a white canvas.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> ReportResult<()> {
    register_font_file(&chart_font_path())?;
    replace_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|message| ReportError::Draw {
                path: path.to_owned(),
                message,
            })
    })
}

/// Fills `root` white and draws a title and legend over `panels`, stacked top to bottom; with
/// `captions`, each panel is titled with its own title.
fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[BarChart],
    captions: bool,
) -> Result<(), String> {
    let names: Vec<&str> = panels
        .first()
        .map(|p| p.series.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let body = draw_header(root, title, &names)?;
    for (area, panel) in body
        .split_evenly((panels.len().max(1), 1))
        .iter()
        .zip(panels)
    {
        draw_bars(area, panel, captions).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Fills `root` white, draws `title` centred and a legend of `names` (wrapped to the width)
/// at the top, and returns the area below them.
fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    names: &[&str],
) -> Result<DrawingArea<DB, Shift>, String> {
    const TITLE_HEIGHT: i32 = 48;
    const ROW_HEIGHT: i32 = 30;
    const MARGIN: i32 = 24;
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(fail)?;
    let (width, _) = root.dim_in_pixel();
    let title_style =
        TextStyle::from((FONT, 28).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(title, &title_style, (width as i32 / 2, 12))
        .map_err(fail)?;

    let label_style = TextStyle::from((FONT, 18).into_font());
    let (mut x, mut y) = (MARGIN, TITLE_HEIGHT);
    for (i, name) in names.iter().enumerate() {
        let (text_width, _) = root.estimate_text_size(name, &label_style).map_err(fail)?;
        let item_width = 26 + text_width as i32;
        if x > MARGIN && x + item_width > width as i32 - MARGIN {
            (x, y) = (MARGIN, y + ROW_HEIGHT);
        }
        let color = COLORS[i % COLORS.len()];
        root.draw(&Rectangle::new(
            [(x, y + 2), (x + 18, y + 20)],
            color.filled(),
        ))
        .map_err(fail)?;
        root.draw_text(name, &label_style, (x + 26, y + 1))
            .map_err(fail)?;
        x += item_width + 30;
    }
    let used = if names.is_empty() {
        TITLE_HEIGHT
    } else {
        y + ROW_HEIGHT + 8
    };
    Ok(root.split_vertically(used).1)
}

/// One grouped bar chart filling `area`, without a legend (the figure draws one for all).
fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &BarChart,
    caption: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let y_max = chart.y_max.filter(|m| *m > 0.0).unwrap_or(100.0);
    let groups = chart.groups.len();
    // Group i is centred on x = i, so plotters' "nice" key points of the axis are the group
    // centres when it may draw one label per group.
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64);
    if caption {
        builder.caption(&chart.title, (FONT, 24));
    }
    let x_range = -0.5..groups.max(1) as f64 - 0.5;
    let mut ctx = builder.build_cartesian_2d(x_range, 0.0..y_max)?;
    let label = |x: &f64| {
        let centre = x.round();
        if (x - centre).abs() > 1e-6 || centre < 0.0 {
            return String::new();
        }
        chart
            .groups
            .get(centre as usize)
            .cloned()
            .unwrap_or_default()
    };
    ctx.configure_mesh()
        .disable_x_mesh()
        // One grid line per labelled value: the minor lines made the bars hard to read.
        .max_light_lines(1)
        .y_labels(11)
        .x_labels(groups.max(1))
        .x_label_formatter(&label)
        .y_desc(chart.y_label.as_str())
        .label_style((FONT, 17))
        .axis_desc_style((FONT, 18))
        .draw()?;

    let series = chart.series.len().max(1) as f64;
    let bar_width = 0.8 / series;
    for (j, (_, values)) in chart.series.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        let bars = values
            .iter()
            .take(groups)
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| {
                let x0 = i as f64 - 0.4 + j as f64 * bar_width;
                Rectangle::new(
                    [(x0, 0.0), (x0 + bar_width, v.clamp(0.0, y_max))],
                    color.filled(),
                )
            });
        ctx.draw_series(bars)?;
    }
    Ok(())
}

/// The lines and markers of `chart` filling `area`.
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &LineChart,
) -> Result<(), String> {
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let points = || {
        chart
            .series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let x_range = span(points().map(|p| p.0), false);
    let y_range = span(points().map(|p| p.1), true);
    let mut ctx = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, y_range)
        .map_err(fail)?;
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style((FONT, 17))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(fail)?;
    for (j, (_, series)) in chart.series.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        let finite: Vec<(f64, f64)> = series
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        ctx.draw_series(LineSeries::new(
            finite.iter().copied(),
            color.stroke_width(3),
        ))
        .map_err(fail)?;
        ctx.draw_series(finite.iter().map(|&p| Circle::new(p, 5, color.filled())))
            .map_err(fail)?;
    }
    Ok(())
}

/// An axis range covering `values` with a little room; from 0 when `from_zero` and no value
/// is negative. Never empty, so a single point or no data still draws.
fn span(values: impl Iterator<Item = f64>, from_zero: bool) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return 0.0..1.0;
    }
    let lo = if from_zero { lo.min(0.0) } else { lo };
    if (hi - lo).abs() < f64::EPSILON {
        return lo - 0.5..hi + 0.5;
    }
    let pad = (hi - lo) * 0.05;
    let lo = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - pad
    };
    lo..hi + pad
}

/// HIT@1, MAP@100 and NDCG@10 (%) of each system in turn; "–" where one has no scores.
fn headline_cells(scores: &[Option<&Scores>]) -> Vec<String> {
    let cell = |s: &Option<&Scores>, value: fn(&Scores) -> f64| {
        s.map_or("–".to_owned(), |s| pct(value(s)))
    };
    scores
        .iter()
        .flat_map(|s| HEADLINE.map(|(_, value)| cell(s, value)))
        .collect()
}

/// A fraction as a percentage with one decimal.
fn pct(value: f64) -> String {
    format!("{:.1}", value * 100.0)
}

/// A difference of fractions in percentage points, signed ("+41.3", "-2.0", "+0.0").
fn points(diff: f64) -> String {
    let p = diff * 100.0;
    // A difference that rounds to zero reads "+0.0", not "-0.0".
    if (p * 10.0).round() == 0.0 {
        "+0.0".to_owned()
    } else {
        format!("{p:+.1}")
    }
}

/// `text` safe inside a Markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A Markdown table; the columns from `text_columns` on are right-aligned (numbers).
fn md_table(
    header: Vec<String>,
    text_columns: usize,
    rows: impl Iterator<Item = Vec<String>>,
) -> Vec<String> {
    let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
    let rule: Vec<String> = (0..header.len())
        .map(|i| if i < text_columns { "---" } else { "---:" }.to_owned())
        .collect();
    let mut lines = vec![line(&header), line(&rule)];
    lines.extend(rows.map(|r| line(&r)));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores with the three headline metrics set, HIT@10 at 0.875 and the rest 0.
    fn s(hit_at_1: f64, map_at_100: f64, ndcg_at_10: f64) -> Scores {
        Scores {
            hit_at_1,
            map_at_100,
            ndcg_at_10,
            hit_at_10: 0.875,
            ..Scores::default()
        }
    }

    fn task(code: &str, queries: usize, scores: Scores) -> TaskScores {
        TaskScores {
            task: code.to_owned(),
            queries,
            scores,
        }
    }

    /// Two systems × three tasks of different sizes; every mean is exact in binary, so JSON
    /// round-trips to equal floats.
    fn report() -> EvalReport {
        let bm25 = SystemResult::new(
            "BM25",
            "bm25",
            vec![
                task("E2CAT", 1, s(0.25, 0.125, 0.5)),
                task("FM2S", 2, s(0.25, 0.25, 0.5)),
                task("A2S", 5, s(0.25, 0.375, 0.5)),
            ],
        );
        let tuned = SystemResult::new(
            "fine-tuned",
            "models/tuned",
            vec![
                task("E2CAT", 1, s(0.5, 0.5, 0.75)),
                task("FM2S", 2, s(0.75, 0.625, 0.75)),
                task("A2S", 5, s(1.0, 0.75, 0.75)),
            ],
        );
        EvalReport {
            title: "Retrieval on the test split".to_owned(),
            split: "test".to_owned(),
            kb_version: "kb-1234abcd".to_owned(),
            corpus_size: 321,
            command: "assetkg datasets eval --split test".to_owned(),
            created: "2026-01-02 03:04 UTC".to_owned(),
            systems: vec![bm25, tuned],
        }
    }

    /// The cells of the first table row whose first cell is `first`.
    fn row(md: &str, first: &str) -> Vec<String> {
        md.lines()
            .map(|l| {
                l.trim()
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.first().map(String::as_str) == Some(first))
            .unwrap_or_else(|| panic!("no row {first} in\n{md}"))
    }

    #[test]
    fn mean_is_unweighted_over_tasks() {
        let report = report();
        let tuned = &report.systems[1];
        // Weighted by queries HIT@1 would be (0.5 + 1.5 + 5) / 8 = 0.875.
        assert_eq!(tuned.mean.hit_at_1, 0.75);
        assert_eq!(tuned.mean.map_at_100, 0.625);
        assert_eq!(report.systems[0].mean.map_at_100, 0.25);
        assert_eq!(report.tasks(), ["E2CAT", "FM2S", "A2S"]);
    }

    #[test]
    fn markdown_shows_percentages_means_and_gains() {
        let md = report().markdown(Some("eval.png"));
        assert!(md.starts_with("# Retrieval on the test split\n"));
        for fact in [
            "test",
            "321 items",
            "`kb-1234abcd`",
            "assetkg datasets eval --split test",
            "2026-01-02 03:04 UTC",
        ] {
            assert!(md.contains(fact), "missing {fact} in\n{md}");
        }
        assert!(md.contains("![HIT@1, MAP@100 and NDCG@10 per task and system](eval.png)"));

        let (body, gains) = md.split_once("## Gain over BM25").expect("a gain section");
        let (summary, per_task) = body.split_once("## Per task").expect("a per-task section");
        assert_eq!(
            row(summary, "fine-tuned")[..6],
            ["fine-tuned", "models/tuned", "75.0", "0.0", "0.0", "87.5"]
        );
        assert_eq!(row(per_task, "task")[2], "BM25 HIT@1");
        assert_eq!(
            row(per_task, "FM2S"),
            ["FM2S", "2", "25.0", "25.0", "50.0", "75.0", "62.5", "75.0"]
        );
        assert_eq!(
            row(per_task, "mean"),
            ["mean", "8", "25.0", "25.0", "50.0", "75.0", "62.5", "75.0"]
        );
        assert!(
            !per_task.contains("87.5"),
            "the mean must not be weighted by queries"
        );
        // HIT@1 0.25 → 0.75, MAP@100 0.25 → 0.625, NDCG@10 0.5 → 0.75; HIT@10 equal.
        let gain = row(gains, "fine-tuned");
        assert_eq!(gain[1], "+50.0");
        assert_eq!(gain[4], "+0.0");
        assert_eq!(gain[6], "+25.0");
        assert_eq!(gain[7], "+37.5");
        assert_eq!(gain.len(), 1 + Scores::NAMES.len());
    }

    #[test]
    fn single_system_has_no_gain_section_and_no_chart_without_name() {
        let mut report = report();
        report.systems.truncate(1);
        let md = report.markdown(None);
        assert!(!md.contains("## Gain"));
        assert!(!md.contains("!["));
    }

    #[test]
    fn gains_are_signed() {
        assert_eq!(points(-0.02), "-2.0");
        assert_eq!(points(0.413), "+41.3");
        assert_eq!(points(-0.0001), "+0.0");
    }

    #[test]
    fn table_has_a_row_per_task_and_a_mean_row() {
        let table = report().table();
        let lines: Vec<&str> = table.lines().collect();
        let data = |first: &str| {
            lines
                .iter()
                .find(|l| {
                    l.trim_start_matches(|c: char| !c.is_alphanumeric())
                        .starts_with(first)
                })
                .unwrap_or_else(|| panic!("no {first} row in\n{table}"))
                .split_whitespace()
                .filter(|w| w.parse::<f64>().is_ok())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            data("A2S"),
            ["5", "25.0", "37.5", "50.0", "100.0", "75.0", "75.0"]
        );
        assert_eq!(
            data("mean"),
            ["8", "25.0", "25.0", "50.0", "75.0", "62.5", "75.0"]
        );
        assert!(table.contains("fine-tuned") && table.contains("NDCG@10"));
    }

    #[test]
    fn json_round_trips() {
        let report = report();
        let json = serde_json::to_string_pretty(&report).expect("serializes");
        let back: EvalReport = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, report);
    }

    /// Width and height from a PNG's IHDR chunk, after checking the signature.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        (be(16), be(20))
    }

    #[test]
    fn write_all_writes_json_markdown_and_png() {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = report();
        let files = report
            .write_all(dir.path(), "eval")
            .expect("writes the report");
        assert_eq!(files.png, dir.path().join("eval.png"));

        let json = fs::read_to_string(&files.json).expect("json");
        assert_eq!(
            serde_json::from_str::<EvalReport>(&json).expect("parses"),
            report
        );
        let md = fs::read_to_string(&files.markdown).expect("markdown");
        assert!(md.contains("](eval.png)"));

        let png = fs::read(&files.png).expect("png");
        assert_eq!(png_size(&png), EVAL_CHART_SIZE);
        // A blank 1400×1200 canvas compresses to a few KB; bars and text take far more.
        assert!(png.len() > 30_000, "png of {} bytes looks blank", png.len());

        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 3, "temporary files left: {names:?}");
    }

    #[test]
    fn eval_chart_draws_bars_of_every_system_and_text() {
        register_font_file(&chart_font_path()).expect("chart font");
        let (w, h) = EVAL_CHART_SIZE;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let report = report();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            draw_figure(&root, &report.title, &report.panels(), true).expect("draws");
            root.present().expect("presents");
        }
        let count = |c: RGBColor| buf.chunks(3).filter(|p| *p == &[c.0, c.1, c.2][..]).count();
        let white = count(WHITE);
        let total = (w * h) as usize;
        assert!(white < total * 95 / 100, "{white} of {total} pixels white");
        // Bars of both systems in three panels: many pixels of each series colour.
        assert!(count(COLORS[0]) > 10_000, "first system's bars missing");
        assert!(count(COLORS[1]) > 10_000, "second system's bars missing");
        // The top rows hold only the title, so anything dark there is rendered text.
        let title = buf[..(w * 40 * 3) as usize]
            .chunks(3)
            .filter(|p| p.iter().all(|v| *v < 128))
            .count();
        assert!(title > 300, "no title text drawn ({title} dark pixels)");
    }

    #[test]
    fn generic_charts_write_pngs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bars = BarChart {
            title: "Positive ratio".to_owned(),
            y_label: "HIT@1 (%)".to_owned(),
            groups: vec!["1:1".to_owned(), "1:3".to_owned(), "1:7".to_owned()],
            series: vec![
                ("MNRL".to_owned(), vec![40.0, 55.5, f64::NAN]),
                ("triplet".to_owned(), vec![30.0, 35.0, 120.0]),
            ],
            y_max: None,
        };
        let path = dir.path().join("bars.png");
        grouped_bar_chart(&path, &bars).expect("bar chart");
        assert_eq!(png_size(&fs::read(&path).expect("png")), BAR_CHART_SIZE);

        let lines = LineChart {
            title: "Sweep".to_owned(),
            x_label: "p_desc".to_owned(),
            y_label: "NDCG@10 (%)".to_owned(),
            series: vec![
                (
                    "base".to_owned(),
                    vec![(0.0, 10.0), (0.4, 30.0), (1.0, 25.0)],
                ),
                ("empty".to_owned(), vec![]),
            ],
        };
        let path = dir.path().join("lines.png");
        line_chart(&path, &lines).expect("line chart");
        assert_eq!(png_size(&fs::read(&path).expect("png")), LINE_CHART_SIZE);
    }

    #[test]
    fn failed_chart_leaves_no_file_and_names_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("missing-dir").join("chart.png");
        let err = grouped_bar_chart(&path, &report().panels()[0]).expect_err("no such directory");
        assert!(
            err.to_string()
                .starts_with(&format!("drawing chart {}: ", path.display())),
            "{err}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn missing_font_is_a_clear_error() {
        let err = register_font_file(Path::new("/nonexistent/fonts/Missing.ttf"))
            .expect_err("no such font");
        assert_eq!(
            err.to_string(),
            "font /nonexistent/fonts/Missing.ttf: not found (install fonts-dejavu-core or set ASSETKG_CHART_FONT)"
        );
    }

    #[test]
    fn invalid_font_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("not-a-font.ttf");
        fs::write(&path, b"plain text, not glyphs").expect("write");
        let err = register_font_file(&path).expect_err("not a font");
        assert!(
            err.to_string().ends_with("not a TrueType or OpenType font"),
            "{err}"
        );
    }
}
