//! The nine task definitions: for each, the SPARQL query that yields its (query entities → item)
//! pairs, the roles of the query entities, how its queries are split, its instruction
//! paraphrases, and the size the paper reports.

use serde::{Deserialize, Serialize};

/// The nine retrieval tasks of the paper (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskCode {
    /// Equipment category → equipment classes.
    E2CAT,
    /// Equipment class → equipment types.
    E2CLT,
    /// Equipment unit → subunit + maintainable item.
    ES2U,
    /// Failure description → failure-mode class.
    FM2CLS,
    /// Asset + failure-mode class → components.
    FM2CMP,
    /// Component → failure modes.
    C2FM,
    /// Asset + failure mode → sensors.
    FM2S,
    /// Asset + sensor → failure modes.
    S2FM,
    /// Asset → sensors.
    A2S,
}

impl TaskCode {
    /// All tasks, in the paper's order.
    pub const ALL: [TaskCode; 9] = [
        TaskCode::E2CAT,
        TaskCode::E2CLT,
        TaskCode::ES2U,
        TaskCode::FM2CLS,
        TaskCode::FM2CMP,
        TaskCode::C2FM,
        TaskCode::FM2S,
        TaskCode::S2FM,
        TaskCode::A2S,
    ];

    /// The code as written in the paper (`FM2S`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskCode::E2CAT => "E2CAT",
            TaskCode::E2CLT => "E2CLT",
            TaskCode::ES2U => "ES2U",
            TaskCode::FM2CLS => "FM2CLS",
            TaskCode::FM2CMP => "FM2CMP",
            TaskCode::C2FM => "C2FM",
            TaskCode::FM2S => "FM2S",
            TaskCode::S2FM => "S2FM",
            TaskCode::A2S => "A2S",
        }
    }

    /// Parses a code, ignoring case.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(code))
    }

    /// The task's definition.
    pub fn spec(self) -> &'static TaskSpec {
        // ALL and SPECS are in the same order (a unit test checks it).
        &SPECS[self as usize]
    }
}

impl std::fmt::Display for TaskCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entity slot of a task's query: the SPARQL variable that binds it and how the query text
/// names it.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    /// SPARQL variable (without `?`).
    pub var: &'static str,
    /// Name in the query text: `Asset`, `Fault`, … (`Asset: pump, Asset Description: …`).
    pub name: &'static str,
    /// Whether augmentation may add the entity's description. Not for failure descriptions:
    /// their KB definition explains which class they belong to, which is the answer.
    pub describe: bool,
}

/// How a task's queries are divided into train, validation and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitBy {
    /// 60/20/20 over the queries.
    Query,
    /// By asset (6/2/2 of the ten matrix assets, the same assets for every such task), so the
    /// test measures generalisation to assets never seen in training.
    Asset,
}

/// The definition of one task.
#[derive(Debug)]
pub struct TaskSpec {
    /// Its code.
    pub code: TaskCode,
    /// What it asks, in a few words.
    pub summary: &'static str,
    /// The SPARQL query: the role variables, `?item`, and optionally `?relevant` (a boolean:
    /// rows with `false` are expert judgments of "not relevant", kept as hard negatives).
    pub sparql: &'static str,
    /// The query entities, in the order the query text names them.
    pub roles: &'static [Role],
    /// How the queries are split.
    pub split_by: SplitBy,
    /// About twenty instructions that all ask for the same thing, one per line.
    pub instructions: &'static str,
    /// (unique queries, unique items) reported by the paper.
    pub paper_size: (usize, usize),
}

impl TaskSpec {
    /// The instruction paraphrases.
    pub fn instructions(&self) -> Vec<&'static str> {
        self.instructions
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

const ASSET: Role = Role {
    var: "asset",
    name: "Asset",
    describe: true,
};

static SPECS: [TaskSpec; 9] = [
    TaskSpec {
        code: TaskCode::E2CAT,
        summary: "equipment category → equipment classes",
        sparql: include_str!("queries/e2cat.rq"),
        roles: &[Role {
            var: "category",
            name: "Equipment category",
            describe: true,
        }],
        split_by: SplitBy::Query,
        instructions: include_str!("instructions/e2cat.txt"),
        paper_size: (10, 107),
    },
    TaskSpec {
        code: TaskCode::E2CLT,
        summary: "equipment class → equipment types",
        sparql: include_str!("queries/e2clt.rq"),
        roles: &[Role {
            var: "class",
            name: "Equipment",
            describe: true,
        }],
        split_by: SplitBy::Query,
        instructions: include_str!("instructions/e2clt.txt"),
        paper_size: (42, 156),
    },
    TaskSpec {
        code: TaskCode::ES2U,
        summary: "equipment unit → subunit + maintainable item",
        sparql: include_str!("queries/es2u.rq"),
        roles: &[Role {
            var: "class",
            name: "Equipment",
            describe: true,
        }],
        split_by: SplitBy::Query,
        instructions: include_str!("instructions/es2u.txt"),
        paper_size: (43, 1191),
    },
    TaskSpec {
        code: TaskCode::FM2CLS,
        summary: "failure description → failure-mode class",
        sparql: include_str!("queries/fm2cls.rq"),
        roles: &[Role {
            var: "description",
            name: "Failure description",
            describe: false,
        }],
        split_by: SplitBy::Query,
        instructions: include_str!("instructions/fm2cls.txt"),
        paper_size: (140, 62),
    },
    TaskSpec {
        code: TaskCode::FM2CMP,
        summary: "asset + failure-mode class → components",
        sparql: include_str!("queries/fm2cmp.rq"),
        roles: &[
            ASSET,
            Role {
                var: "class",
                name: "Failure class",
                describe: true,
            },
        ],
        split_by: SplitBy::Query,
        instructions: include_str!("instructions/fm2cmp.txt"),
        paper_size: (254, 44),
    },
    TaskSpec {
        code: TaskCode::C2FM,
        summary: "component → failure modes",
        sparql: include_str!("queries/c2fm.rq"),
        roles: &[Role {
            var: "component",
            name: "Component",
            describe: true,
        }],
        split_by: SplitBy::Query,
        instructions: include_str!("instructions/c2fm.txt"),
        paper_size: (44, 6),
    },
    TaskSpec {
        code: TaskCode::FM2S,
        summary: "asset + failure mode → sensors",
        sparql: include_str!("queries/fm2s.rq"),
        roles: &[
            ASSET,
            Role {
                var: "fault",
                name: "Fault",
                describe: true,
            },
        ],
        split_by: SplitBy::Asset,
        instructions: include_str!("instructions/fm2s.txt"),
        paper_size: (111, 53),
    },
    TaskSpec {
        code: TaskCode::S2FM,
        summary: "asset + sensor → failure modes",
        sparql: include_str!("queries/s2fm.rq"),
        roles: &[
            ASSET,
            Role {
                var: "sensor",
                name: "Sensor",
                describe: true,
            },
        ],
        split_by: SplitBy::Asset,
        instructions: include_str!("instructions/s2fm.txt"),
        paper_size: (485, 55),
    },
    TaskSpec {
        code: TaskCode::A2S,
        summary: "asset → sensors",
        sparql: include_str!("queries/a2s.rq"),
        roles: &[ASSET],
        // A2S shares the asset split: an asset's sensor list in training would give away the
        // answers of its FM2S and S2FM test queries.
        split_by: SplitBy::Asset,
        instructions: include_str!("instructions/a2s.txt"),
        paper_size: (10, 53),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_follow_the_order_of_the_codes() {
        for code in TaskCode::ALL {
            assert_eq!(code.spec().code, code);
            assert_eq!(TaskCode::parse(&code.as_str().to_lowercase()), Some(code));
        }
        assert_eq!(TaskCode::parse("X2Y"), None);
    }

    #[test]
    fn every_task_has_about_twenty_distinct_instructions_and_binds_its_roles() {
        for code in TaskCode::ALL {
            let spec = code.spec();
            let instructions = spec.instructions();
            let distinct: std::collections::BTreeSet<_> = instructions.iter().collect();
            assert_eq!(
                distinct.len(),
                instructions.len(),
                "{code}: duplicate instruction"
            );
            assert!(
                (18..=25).contains(&instructions.len()),
                "{code}: {}",
                instructions.len()
            );
            for role in spec.roles {
                assert!(
                    spec.sparql.contains(&format!("?{}", role.var)),
                    "{code}: ?{}",
                    role.var
                );
            }
            assert!(spec.sparql.contains("?item"), "{code}");
        }
    }
}
