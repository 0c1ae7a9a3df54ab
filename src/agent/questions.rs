//! The agent's question set, generated from the experts' sensor-relevance judgments in the KB
//! (FailureSensorIQ): single-answer multiple-choice questions over every judged asset —
//! failure mode → sensor and sensor → failure mode, each as selection ("which is relevant")
//! and elimination ("which is NOT relevant"), asset → sensor selection, 2–5 options, three
//! wordings each — and open troubleshooting questions naming two symptoms, with the failure
//! modes a good answer must name. Deterministic for a seed.

use super::react::Polarity;
use crate::index::documents::{iri, select, value};
use crate::kb::{KbResult, KnowledgeBase};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One multiple-choice question with its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceQuestion {
    /// Stable id.
    pub id: String,
    /// The asset (equipment class IRI).
    pub asset: String,
    /// `FM2S`, `S2FM` or `A2S`.
    pub task: String,
    /// Selection or elimination.
    pub polarity: Polarity,
    /// Which wording template (0–2).
    pub wording: usize,
    /// The question.
    pub text: String,
    /// The options.
    pub options: Vec<String>,
    /// IRIs of the options' entities.
    pub option_iris: Vec<String>,
    /// The right option (from 0).
    pub answer: usize,
}

/// One open troubleshooting question with the entities a good answer names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenQuestion {
    /// Stable id.
    pub id: String,
    /// The asset (equipment class IRI).
    pub asset: String,
    /// The question.
    pub text: String,
    /// IRIs of the sensors named as symptoms.
    pub symptoms: Vec<String>,
    /// IRIs of the failure modes a good answer names: every failure mode of the asset that the
    /// experts judged both symptoms relevant to.
    pub expected: Vec<String>,
    /// Their labels.
    pub expected_labels: Vec<String>,
}

/// The whole set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionSet {
    /// The seed it was drawn with.
    pub seed: u64,
    /// The KB version it was generated from.
    pub kb_version: String,
    /// Multiple-choice questions.
    pub choice: Vec<ChoiceQuestion>,
    /// Open questions.
    pub open: Vec<OpenQuestion>,
}

/// Per asset: failure mode → (relevant sensors, not-relevant sensors).
type Judgments = BTreeMap<String, BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>>;

/// Questions per asset and kind.
const FM2S_PER_ASSET: usize = 6;
const S2FM_PER_ASSET: usize = 4;
const A2S_PER_ASSET: usize = 2;
const OPEN_PER_ASSET: usize = 4;

const FM2S_SELECT: [&str; 3] = [
    "Which sensor is most relevant for detecting {fm} in a {asset}?",
    "A reliability engineer wants to catch {fm} early on a {asset}. Which of these sensors should they monitor?",
    "For the {asset}, which measurement best reveals {fm}?",
];
const FM2S_ELIMINATE: [&str; 3] = [
    "Which sensor is NOT relevant for detecting {fm} in a {asset}?",
    "All but one of these sensors help detect {fm} on a {asset}. Which one is least relevant?",
    "Which of these measurements would be irrelevant to {fm} of a {asset}?",
];
const S2FM_SELECT: [&str; 3] = [
    "On a {asset}, an abnormal {sensor} reading most likely indicates which failure mode?",
    "Which failure mode of a {asset} does monitoring {sensor} help detect?",
    "Which of these {asset} failure modes can be detected with {sensor}?",
];
const S2FM_ELIMINATE: [&str; 3] = [
    "Which failure mode of a {asset} can NOT be detected with {sensor}?",
    "{sensor} readings on a {asset} reveal all of these failure modes except which one?",
    "Which of these {asset} failure modes is unrelated to {sensor}?",
];
const A2S_SELECT: [&str; 3] = [
    "Which of these sensors is used to monitor a {asset}?",
    "Which measurement belongs to the condition monitoring of a {asset}?",
    "When instrumenting a {asset}, which of these sensors would you install?",
];
const OPEN: [&str; 3] = [
    "My {asset} shows abnormal {s1} and {s2} readings. What should I check?",
    "On our {asset}, {s1} and {s2} have both drifted out of their normal range. Which failure modes could explain it?",
    "What could be wrong with a {asset} when {s1} and {s2} look abnormal?",
];

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (key, value) in pairs {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    // "a" before a vowel sound of a filled-in name is "an".
    let words: Vec<&str> = text.split(' ').collect();
    let text = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let next_vowel = words
                .get(i + 1)
                .and_then(|n| n.chars().next())
                .is_some_and(|c| "aeiouAEIOU".contains(c));
            if *w == "a" && next_vowel {
                "an"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    // A question that starts with a filled-in name starts with a capital.
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

fn read_judgments(kb: &KnowledgeBase) -> KbResult<(Judgments, BTreeMap<String, String>)> {
    let rows = select(
        kb,
        "SELECT ?asset ?fm ?sensor ?relevant WHERE {
           ?j a akg:SensorRelevanceJudgment ; akg:judgedAsset ?asset ;
              akg:judgedFailureMode ?fm ; akg:judgedSensor ?sensor ; akg:relevant ?relevant }",
    )?;
    let mut judgments: Judgments = BTreeMap::new();
    for row in &rows {
        let (Some(asset), Some(fm), Some(sensor), Some(relevant)) =
            (iri(&row[0]), iri(&row[1]), iri(&row[2]), value(&row[3]))
        else {
            continue;
        };
        let entry = judgments.entry(asset).or_default().entry(fm).or_default();
        if relevant == "true" {
            entry.0.insert(sensor);
        } else {
            entry.1.insert(sensor);
        }
    }
    let mut labels = BTreeMap::new();
    for row in select(
        kb,
        "SELECT ?e ?l WHERE { ?e skos:prefLabel ?l .
           { ?e a akg:EquipmentClass } UNION { ?e a akg:FailureMode } UNION { ?e a akg:Sensor } }",
    )? {
        if let (Some(e), Some(l)) = (iri(&row[0]), value(&row[1])) {
            labels.insert(e, l);
        }
    }
    Ok((judgments, labels))
}

/// Draws `k - 1` distractors from `pool` and places `answer` at a random position.
fn options(
    rng: &mut ChaCha8Rng,
    answer: &str,
    pool: &[&String],
    k: usize,
) -> Option<(Vec<String>, usize)> {
    if pool.len() + 1 < k {
        return None;
    }
    let mut chosen: Vec<String> = pool
        .choose_multiple(rng, k - 1)
        .map(|s| (*s).clone())
        .collect();
    chosen.push(answer.to_owned());
    chosen.shuffle(rng);
    let position = chosen.iter().position(|c| c == answer)?;
    Some((chosen, position))
}

/// Generates the set from `kb` with `seed`.
pub fn generate(kb: &KnowledgeBase, seed: u64) -> KbResult<QuestionSet> {
    let (judgments, labels) = read_judgments(kb)?;
    let label = |iri: &str| labels.get(iri).cloned().unwrap_or_else(|| iri.to_owned());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut choice = Vec::new();
    let mut open = Vec::new();
    let mut counter = 0usize;
    for (asset, by_fm) in &judgments {
        let asset_label = label(asset);
        // sensor → (relevant failure modes, not-relevant failure modes)
        let mut by_sensor: BTreeMap<&String, (BTreeSet<&String>, BTreeSet<&String>)> =
            BTreeMap::new();
        for (fm, (relevant, irrelevant)) in by_fm {
            for s in relevant {
                by_sensor.entry(s).or_default().0.insert(fm);
            }
            for s in irrelevant {
                by_sensor.entry(s).or_default().1.insert(fm);
            }
        }
        let fms: Vec<&String> = by_fm.keys().collect();
        let sensors: Vec<&String> = by_sensor.keys().copied().collect();
        let mut push = |task: &str,
                        polarity: Polarity,
                        templates: &[&str; 3],
                        pairs: &[(&str, &str)],
                        opts: (Vec<String>, usize)| {
            let wording = counter % 3;
            choice.push(ChoiceQuestion {
                id: format!("{task}-{}-{counter:03}", crate::vocab::compact(asset)),
                asset: asset.clone(),
                task: task.to_owned(),
                polarity,
                wording,
                text: fill(templates[wording], pairs),
                options: opts.0.iter().map(|o| label(o)).collect(),
                option_iris: opts.0.clone(),
                answer: opts.1,
            });
            counter += 1;
        };
        // Option counts cycle through 2..=5.
        let mut k_cycle = (0..).map(|i| 2 + i % 4);
        for polarity in [Polarity::Select, Polarity::Eliminate]
            .into_iter()
            .flat_map(|p| std::iter::repeat_n(p, FM2S_PER_ASSET))
        {
            let k = k_cycle.next().unwrap_or(4);
            let mut order = fms.clone();
            order.shuffle(&mut rng);
            for fm in order {
                let (relevant, irrelevant) = &by_fm[fm];
                let (right, wrong): (Vec<&String>, Vec<&String>) = match polarity {
                    Polarity::Select => (relevant.iter().collect(), irrelevant.iter().collect()),
                    Polarity::Eliminate => (irrelevant.iter().collect(), relevant.iter().collect()),
                };
                let Some(answer) = right.choose(&mut rng) else {
                    continue;
                };
                if let Some(opts) = options(&mut rng, answer, &wrong, k) {
                    let templates = match polarity {
                        Polarity::Select => &FM2S_SELECT,
                        Polarity::Eliminate => &FM2S_ELIMINATE,
                    };
                    push(
                        "FM2S",
                        polarity,
                        templates,
                        &[("fm", &label(fm)), ("asset", &asset_label)],
                        opts,
                    );
                    break;
                }
            }
        }
        for polarity in [Polarity::Select, Polarity::Eliminate]
            .into_iter()
            .flat_map(|p| std::iter::repeat_n(p, S2FM_PER_ASSET))
        {
            let k = k_cycle.next().unwrap_or(4);
            let mut order = sensors.clone();
            order.shuffle(&mut rng);
            for sensor in order {
                let (relevant, irrelevant) = &by_sensor[sensor];
                let (right, wrong): (Vec<&String>, Vec<&String>) = match polarity {
                    Polarity::Select => (
                        relevant.iter().copied().collect(),
                        irrelevant.iter().copied().collect(),
                    ),
                    Polarity::Eliminate => (
                        irrelevant.iter().copied().collect(),
                        relevant.iter().copied().collect(),
                    ),
                };
                let Some(answer) = right.choose(&mut rng) else {
                    continue;
                };
                if let Some(opts) = options(&mut rng, answer, &wrong, k) {
                    let templates = match polarity {
                        Polarity::Select => &S2FM_SELECT,
                        Polarity::Eliminate => &S2FM_ELIMINATE,
                    };
                    push(
                        "S2FM",
                        polarity,
                        templates,
                        &[("sensor", &label(sensor)), ("asset", &asset_label)],
                        opts,
                    );
                    break;
                }
            }
        }
        // A2S: a sensor relevant to some failure mode of the asset among sensors that are
        // relevant to none of them (judged on other assets only).
        let own: BTreeSet<&String> = by_fm.values().flat_map(|(r, _)| r).collect();
        let others: Vec<&String> = judgments
            .values()
            .flat_map(|m| m.values().flat_map(|(r, _)| r))
            .filter(|s| !own.contains(s) && !by_sensor.contains_key(s))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let own: Vec<&String> = own.into_iter().collect();
        for _ in 0..A2S_PER_ASSET {
            let k = k_cycle.next().unwrap_or(4);
            let Some(answer) = own.choose(&mut rng) else {
                break;
            };
            if let Some(opts) = options(&mut rng, answer, &others, k) {
                push(
                    "A2S",
                    Polarity::Select,
                    &A2S_SELECT,
                    &[("asset", &asset_label)],
                    opts,
                );
            }
        }
        // Open questions: two symptoms that together point to one to three failure modes.
        let mut pairs: Vec<(&String, &String, Vec<&String>)> = Vec::new();
        for (i, s1) in sensors.iter().enumerate() {
            for s2 in &sensors[i + 1..] {
                let both: Vec<&String> = fms
                    .iter()
                    .copied()
                    .filter(|fm| by_fm[*fm].0.contains(*s1) && by_fm[*fm].0.contains(*s2))
                    .collect();
                if (1..=3).contains(&both.len()) {
                    pairs.push((s1, s2, both));
                }
            }
        }
        pairs.shuffle(&mut rng);
        for (n, (s1, s2, expected)) in pairs.into_iter().take(OPEN_PER_ASSET).enumerate() {
            let wording = (open.len() + n) % 3;
            open.push(OpenQuestion {
                id: format!("OPEN-{}-{:02}", crate::vocab::compact(asset), n),
                asset: asset.clone(),
                text: fill(
                    OPEN[wording],
                    &[
                        ("asset", &asset_label),
                        ("s1", &label(s1)),
                        ("s2", &label(s2)),
                    ],
                ),
                symptoms: vec![(*s1).clone(), (*s2).clone()],
                expected_labels: expected.iter().map(|e| label(e)).collect(),
                expected: expected.into_iter().cloned().collect(),
            });
        }
    }
    Ok(QuestionSet {
        seed,
        kb_version: kb.current_version()?,
        choice,
        open,
    })
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn templates_fill_and_capitalise() {
        assert_eq!(
            fill(
                "{sensor} readings on a {asset}?",
                &[("sensor", "vibration"), ("asset", "fan")]
            ),
            "Vibration readings on a fan?"
        );
        assert_eq!(
            fill("Is a {asset} here?", &[("asset", "aero gas turbine")]),
            "Is an aero gas turbine here?"
        );
    }
}
