//! Train/validation/test assignment. Tasks split by query shuffle their query ids with a seeded
//! ChaCha8 generator (stable across platforms and `rand` releases) and cut 60/20/20; tasks split
//! by asset share one asset assignment (6/2/2 of ten assets), so no test asset is seen in any
//! of them during training.

use super::spec::SplitBy;
use super::TaskQuery;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which part of a dataset a query belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training.
    Train,
    /// Model selection during training.
    Validation,
    /// Final evaluation only.
    Test,
}

impl Split {
    /// All splits.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// Lower-case name (`train`, `validation`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Shares of validation and test (train gets the rest).
const VALIDATION_SHARE: f64 = 0.2;
const TEST_SHARE: f64 = 0.2;

/// Splits `n` shuffled units: the first go to train, then validation, then test. Each of
/// validation and test gets at least one unit when there are three or more.
fn cut(n: usize) -> (usize, usize) {
    let share = |s: f64| {
        let k = (n as f64 * s).round() as usize;
        if n >= 3 {
            k.max(1)
        } else {
            k
        }
    };
    let (validation, test) = (share(VALIDATION_SHARE), share(TEST_SHARE));
    (n.saturating_sub(validation + test), validation)
}

/// Assigns the split of every unit in `units` (sorted first, so the input order does not
/// matter), shuffled by a generator seeded with `seed` and `stream`.
fn split_units(units: BTreeSet<String>, seed: u64, stream: u64) -> BTreeMap<String, Split> {
    let mut units: Vec<String> = units.into_iter().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    units.shuffle(&mut rng);
    let (train, validation) = cut(units.len());
    units
        .into_iter()
        .enumerate()
        .map(|(i, unit)| {
            let split = if i < train {
                Split::Train
            } else if i < train + validation {
                Split::Validation
            } else {
                Split::Test
            };
            (unit, split)
        })
        .collect()
}

/// Sets the split of every query from `seed`.
pub fn assign_splits(queries: &mut [TaskQuery], seed: u64) {
    let assets: BTreeSet<String> = queries
        .iter()
        .filter(|q| q.task.spec().split_by == SplitBy::Asset)
        .map(|q| q.group.clone())
        .collect();
    // Stream 0 draws the assets, stream 1 + task index the queries of each task.
    let asset_splits = split_units(assets, seed, 0);
    let mut task_splits = BTreeMap::new();
    for (index, code) in super::TaskCode::ALL.into_iter().enumerate() {
        if code.spec().split_by == SplitBy::Query {
            let ids: BTreeSet<String> = queries
                .iter()
                .filter(|q| q.task == code)
                .map(|q| q.group.clone())
                .collect();
            task_splits.extend(split_units(ids, seed, 1 + index as u64));
        }
    }
    for q in queries.iter_mut() {
        let splits = match q.task.spec().split_by {
            SplitBy::Asset => &asset_splits,
            SplitBy::Query => &task_splits,
        };
        if let Some(split) = splits.get(&q.group) {
            q.split = *split;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_sixty_twenty_twenty() {
        assert_eq!(cut(10), (6, 2));
        assert_eq!(cut(100), (60, 20));
        assert_eq!(cut(3), (1, 1));
        assert_eq!(cut(1), (1, 0));
        assert_eq!(cut(0), (0, 0));
    }

    #[test]
    fn splitting_is_deterministic_and_depends_on_the_seed() {
        let units: BTreeSet<String> = (0..50).map(|i| format!("u{i}")).collect();
        let a = split_units(units.clone(), 7, 1);
        assert_eq!(a, split_units(units.clone(), 7, 1));
        assert_ne!(a, split_units(units.clone(), 8, 1));
        assert_ne!(a, split_units(units.clone(), 7, 2));
        let tests = a.values().filter(|s| **s == Split::Test).count();
        assert_eq!(tests, 10);
    }
}
