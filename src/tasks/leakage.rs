//! The leakage check: a test (or validation) query must never reach training, not even as a
//! rephrasing. Three checks, each a list of [`Leak`]s:
//!
//! 1. no query id is in training and in a held-out split of the same task;
//! 2. for the asset-split tasks, no held-out asset occurs in any of their training queries;
//! 3. no surface form of a held-out query (its entities named by label or any synonym, as the
//!    training rephrasings may name them) equals a surface form of a training query of the same
//!    task — two entities that share a synonym would otherwise leak through the text.

use super::spec::SplitBy;
use super::{Dataset, Split, TaskCode};
use crate::augment::render::surface_forms;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One held-out query that training could see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leak {
    /// The task of the held-out query.
    pub task: TaskCode,
    /// Its id.
    pub query: String,
    /// Its split.
    pub split: Split,
    /// What training sees of it.
    pub reason: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} query {}: {}",
            self.task, self.split, self.query, self.reason
        )
    }
}

/// Every leak of `dataset`; empty when the splits are clean.
pub fn check_leakage(dataset: &Dataset) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let train = dataset.queries.iter().filter(|q| q.split == Split::Train);
    let held_out = || dataset.queries.iter().filter(|q| q.split != Split::Train);

    let train_ids: BTreeSet<(TaskCode, &str)> =
        train.clone().map(|q| (q.task, q.id.as_str())).collect();
    let train_assets: BTreeSet<&str> = train
        .clone()
        .filter(|q| q.task.spec().split_by == SplitBy::Asset)
        .map(|q| q.group.as_str())
        .collect();
    let mut train_forms: BTreeMap<(TaskCode, String), &str> = BTreeMap::new();
    for q in train {
        for form in surface_forms(q) {
            train_forms.entry((q.task, form)).or_insert(q.id.as_str());
        }
    }

    for q in held_out() {
        let leak = |reason: String| Leak {
            task: q.task,
            query: q.id.clone(),
            split: q.split,
            reason,
        };
        if train_ids.contains(&(q.task, q.id.as_str())) {
            leaks.push(leak("the same query is in training".into()));
        }
        if q.task.spec().split_by == SplitBy::Asset && train_assets.contains(q.group.as_str()) {
            leaks.push(leak(format!("its asset {} is in training", q.group)));
        }
        if let Some(train_id) = surface_forms(q)
            .into_iter()
            .find_map(|form| train_forms.get(&(q.task, form)).copied())
        {
            if train_id != q.id {
                leaks.push(leak(format!(
                    "training query {train_id} can be written with the same words"
                )));
            }
        }
    }
    leaks
}
