//! Building the datasets: each task's SPARQL query gives rows of (query entities, item,
//! relevant?); rows with the same query entities become one query, their items its positives
//! (and, for expert "not relevant" judgments, its hard negatives). Entity names come from one
//! query over the labelled classes, so that every text is written from the KB alone.

use super::spec::{SplitBy, TaskCode, TaskSpec};
use super::split::{assign_splits, Split};
use super::{CorpusItem, Dataset, Mention, TaskError, TaskQuery, TaskResult};
use crate::index::documents as kinds;
use crate::kb::{KnowledgeBase, QueryOutcome};
use crate::vocab::compact;
use oxigraph::model::Term;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What the tasks need to know of one KB entity to name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its IRI.
    pub iri: String,
    /// Its kind (one of [`crate::index::KINDS`]).
    pub kind: String,
    /// `skos:prefLabel`.
    pub label: String,
    /// `skos:altLabel`s, sorted.
    pub synonyms: Vec<String>,
    /// The code of a failure-mode class.
    pub code: Option<String>,
    /// The label of the subunit of a maintainable item.
    pub subunit: Option<String>,
}

impl Entity {
    /// The name a query uses: the label, with its code for a failure-mode class
    /// (`abnormal instrument reading (AIR)`, the paper's form).
    pub fn name(&self) -> String {
        self.with_code(&self.label)
    }

    /// The synonyms in the same form as [`Self::name`].
    pub fn synonym_names(&self) -> Vec<String> {
        self.synonyms.iter().map(|s| self.with_code(s)).collect()
    }

    fn with_code(&self, label: &str) -> String {
        match &self.code {
            Some(code) => format!("{label} ({code})"),
            None => label.to_owned(),
        }
    }

    /// The corpus text: the kind prefix and the name (`Sensor: vibration`,
    /// `Component group: stator, Component name: stator winding`).
    pub fn item_text(&self) -> String {
        match self.kind.as_str() {
            kinds::MAINTAINABLE_ITEM => format!(
                "Component group: {}, Component name: {}",
                self.subunit.as_deref().unwrap_or("unknown"),
                self.label
            ),
            kind => format!("{}: {}", item_prefix(kind), self.name()),
        }
    }
}

/// The kind prefix of corpus texts.
fn item_prefix(kind: &str) -> &'static str {
    match kind {
        kinds::EQUIPMENT_CATEGORY => "Equipment category",
        kinds::EQUIPMENT_CLASS => "Equipment",
        kinds::EQUIPMENT_TYPE => "Equipment type",
        kinds::SUBUNIT => "Component group",
        kinds::MAINTAINABLE_ITEM => "Component name",
        kinds::COMPONENT_KIND => "Component",
        kinds::FAILURE_MODE_CLASS => "Failure class",
        kinds::FAILURE_MODE => "Fault",
        kinds::FAILURE_DESCRIPTION => "Failure description",
        _ => "Sensor",
    }
}

/// The akg class of each kind that tasks name.
const KIND_CLASSES: &[(&str, &str)] = &[
    ("EquipmentCategory", kinds::EQUIPMENT_CATEGORY),
    ("EquipmentClass", kinds::EQUIPMENT_CLASS),
    ("EquipmentType", kinds::EQUIPMENT_TYPE),
    ("Subunit", kinds::SUBUNIT),
    ("MaintainableItem", kinds::MAINTAINABLE_ITEM),
    ("ComponentKind", kinds::COMPONENT_KIND),
    ("FailureModeClass", kinds::FAILURE_MODE_CLASS),
    ("FailureMode", kinds::FAILURE_MODE),
    ("FailureDescription", kinds::FAILURE_DESCRIPTION),
    ("Sensor", kinds::SENSOR),
];

/// Every labelled entity of the task kinds, by IRI.
pub fn load_entities(kb: &KnowledgeBase) -> TaskResult<BTreeMap<String, Entity>> {
    let values: Vec<String> = KIND_CLASSES
        .iter()
        .map(|(c, _)| format!("akg:{c}"))
        .collect();
    let sparql = format!(
        "SELECT ?e ?type ?label ?alt ?code ?subunit WHERE {{
           VALUES ?type {{ {} }}
           ?e a ?type ; skos:prefLabel ?label .
           OPTIONAL {{ ?e skos:altLabel ?alt }}
           OPTIONAL {{ ?e akg:code ?code }}
           OPTIONAL {{ ?e akg:partOf/skos:prefLabel ?subunit }}
         }}",
        values.join(" ")
    );
    let mut entities: BTreeMap<String, Entity> = BTreeMap::new();
    let mut synonyms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in solutions(kb, &sparql)? {
        let (Some(Term::NamedNode(e)), Some(Term::NamedNode(ty)), Some(label)) =
            (&row[0], &row[1], &row[2])
        else {
            continue;
        };
        let Some(kind) = KIND_CLASSES
            .iter()
            .find(|(class, _)| ty.as_str().strip_prefix(crate::vocab::AKG) == Some(*class))
            .map(|(_, kind)| *kind)
        else {
            continue;
        };
        let entity = entities
            .entry(e.as_str().to_owned())
            .or_insert_with(|| Entity {
                iri: e.as_str().to_owned(),
                kind: kind.to_owned(),
                label: literal(label),
                synonyms: Vec::new(),
                code: row[4].as_ref().map(literal),
                subunit: row[5].as_ref().map(literal),
            });
        if let Some(alt) = &row[3] {
            let alt = literal(alt);
            if alt != entity.label {
                synonyms.entry(entity.iri.clone()).or_default().insert(alt);
            }
        }
    }
    for (iri, names) in synonyms {
        if let Some(entity) = entities.get_mut(&iri) {
            entity.synonyms = names.into_iter().collect();
        }
    }
    Ok(entities)
}

/// Builds all nine tasks from `kb`, split with `seed`.
pub fn build(kb: &KnowledgeBase, seed: u64) -> TaskResult<Dataset> {
    let entities = load_entities(kb)?;
    let mut queries = Vec::new();
    for code in TaskCode::ALL {
        let spec = code.spec();
        let task_queries = task_queries(kb, spec, &entities)?;
        tracing::debug!(task = %code, queries = task_queries.len(), "task built");
        queries.extend(task_queries);
    }
    assign_splits(&mut queries, seed);

    let mut corpus_iris: BTreeSet<&str> = BTreeSet::new();
    for q in &queries {
        corpus_iris.extend(q.positives.iter().map(String::as_str));
        corpus_iris.extend(q.hard_negatives.iter().map(String::as_str));
    }
    let corpus = corpus_iris
        .into_iter()
        .filter_map(|iri| entities.get(iri))
        .map(|e| CorpusItem {
            id: e.iri.clone(),
            kind: e.kind.clone(),
            text: e.item_text(),
        })
        .collect();
    Ok(Dataset {
        seed,
        kb_version: kb.kb_version()?,
        corpus,
        queries,
    })
}

/// Positive and negative items of one query, while rows are gathered.
#[derive(Default)]
struct Gathered {
    positives: BTreeSet<String>,
    negatives: BTreeSet<String>,
}

/// The queries of one task, sorted by id, all in [`Split::Train`] until split.
fn task_queries(
    kb: &KnowledgeBase,
    spec: &TaskSpec,
    entities: &BTreeMap<String, Entity>,
) -> TaskResult<Vec<TaskQuery>> {
    let QueryOutcome::Solutions { variables, rows } = kb.query(spec.sparql)? else {
        return Err(TaskError::BadRow {
            task: spec.code,
            message: "the task query is not a SELECT".into(),
        });
    };
    let position = |var: &str| -> TaskResult<usize> {
        variables
            .iter()
            .position(|v| v.as_str() == var)
            .ok_or_else(|| TaskError::BadRow {
                task: spec.code,
                message: format!("the query does not select ?{var}"),
            })
    };
    let role_columns = spec
        .roles
        .iter()
        .map(|r| position(r.var))
        .collect::<TaskResult<Vec<_>>>()?;
    let item_column = position("item")?;
    let relevant_column = variables.iter().position(|v| v.as_str() == "relevant");

    let mut gathered: BTreeMap<Vec<String>, Gathered> = BTreeMap::new();
    for row in &rows {
        let iri_at = |column: usize| -> TaskResult<String> {
            match &row[column] {
                Some(Term::NamedNode(n)) => Ok(n.as_str().to_owned()),
                other => Err(TaskError::BadRow {
                    task: spec.code,
                    message: format!(
                        "?{} is {other:?}, expected an IRI",
                        variables[column].as_str()
                    ),
                }),
            }
        };
        let key = role_columns
            .iter()
            .map(|c| iri_at(*c))
            .collect::<TaskResult<Vec<_>>>()?;
        let item = iri_at(item_column)?;
        let relevant = match relevant_column.map(|c| &row[c]) {
            None => true,
            Some(Some(Term::Literal(l))) if l.value() == "true" || l.value() == "1" => true,
            Some(Some(Term::Literal(l))) if l.value() == "false" || l.value() == "0" => false,
            Some(other) => {
                return Err(TaskError::BadRow {
                    task: spec.code,
                    message: format!("?relevant is {other:?}, expected a boolean"),
                })
            }
        };
        let entry = gathered.entry(key).or_default();
        if relevant {
            entry.positives.insert(item);
        } else {
            entry.negatives.insert(item);
        }
    }

    let lookup = |iri: &str| -> TaskResult<&Entity> {
        entities.get(iri).ok_or_else(|| TaskError::UnknownEntity {
            task: spec.code,
            iri: iri.to_owned(),
        })
    };
    let mut queries = Vec::new();
    for (key, g) in gathered {
        // A query whose every judged item is "not relevant" has nothing to retrieve.
        if g.positives.is_empty() {
            continue;
        }
        let mut mentions = Vec::with_capacity(key.len());
        for (role, iri) in spec.roles.iter().zip(&key) {
            let entity = lookup(iri)?;
            mentions.push(Mention {
                role: role.name.to_owned(),
                iri: iri.clone(),
                label: entity.name(),
                synonyms: entity.synonym_names(),
                describe: role.describe,
            });
        }
        for item in g.positives.iter().chain(&g.negatives) {
            lookup(item)?;
        }
        let id = format!(
            "{}:{}",
            spec.code,
            key.iter()
                .map(|iri| compact(iri))
                .collect::<Vec<_>>()
                .join("+")
        );
        let group = match spec.split_by {
            SplitBy::Asset => key[0].clone(),
            SplitBy::Query => id.clone(),
        };
        // An item judged relevant through one matrix cell and not through another (a split
        // "a/ b" sensor cell) counts as relevant.
        let hard_negatives = g.negatives.difference(&g.positives).cloned().collect();
        queries.push(TaskQuery {
            id,
            task: spec.code,
            split: Split::Train,
            group,
            mentions,
            positives: g.positives.into_iter().collect(),
            hard_negatives,
        });
    }
    Ok(queries)
}

/// The rows of a SELECT query.
fn solutions(kb: &KnowledgeBase, sparql: &str) -> TaskResult<Vec<Vec<Option<Term>>>> {
    match kb.query(sparql)? {
        QueryOutcome::Solutions { rows, .. } => Ok(rows),
        _ => Ok(Vec::new()),
    }
}

/// The lexical form of a literal (or the IRI of a named node).
fn literal(term: &Term) -> String {
    match term {
        Term::Literal(l) => l.value().to_owned(),
        Term::NamedNode(n) => n.as_str().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(kind: &str, label: &str) -> Entity {
        Entity {
            iri: format!("http://e.org/{label}"),
            kind: kind.into(),
            label: label.into(),
            synonyms: vec!["other name".into()],
            code: None,
            subunit: None,
        }
    }

    #[test]
    fn item_texts_carry_the_kind_prefix() {
        assert_eq!(
            entity(kinds::SENSOR, "vibration").item_text(),
            "Sensor: vibration"
        );
        assert_eq!(
            entity(kinds::FAILURE_MODE, "cavitation").item_text(),
            "Fault: cavitation"
        );
        let mut fmc = entity(kinds::FAILURE_MODE_CLASS, "abnormal instrument reading");
        fmc.code = Some("AIR".into());
        assert_eq!(
            fmc.item_text(),
            "Failure class: abnormal instrument reading (AIR)"
        );
        assert_eq!(fmc.synonym_names(), ["other name (AIR)"]);
        let mut item = entity(kinds::MAINTAINABLE_ITEM, "stator winding");
        item.subunit = Some("stator".into());
        assert_eq!(
            item.item_text(),
            "Component group: stator, Component name: stator winding"
        );
    }
}
