//! Evaluation of retrieval on the task datasets: the metrics of sentence-transformers'
//! `InformationRetrievalEvaluator` ([`metrics`]), the runs of the baselines and of fine-tuned
//! models over the shared corpus ([`run`]), and the reports people compare: a terminal table,
//! JSON, Markdown and PNG bar charts ([`report`]).

pub mod metrics;
pub mod report;
pub mod run;

pub use metrics::{rank_by_score, score_query, Scores, HIT_KS};
pub use report::{EvalReport, SystemResult, TaskScores};
pub use run::{corpus_index, evaluate, Retriever};
