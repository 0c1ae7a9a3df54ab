//! `describe`: writes the missing entity descriptions with a chat LLM and stores them back into
//! the KB with their provenance. This module owns the target selection, the prompt (grounded in
//! the entity's own KB facts), the checking of the model's answer, and the one fact graph a run
//! writes: `graph:descriptions-<run id>`, attributed to the model, `akg:proposed`, holding one
//! `akg:EntityDescription` per success and the `akg:DescriptionRun` activity.
//!
//! The graph is built in memory as Turtle, parsed back and committed through
//! [`KnowledgeBase::load_parsed`] (one SHACL-validated transaction), so the optional Turtle file
//! and the store hold exactly the same triples, and a refused write leaves the store untouched.
//! A bad answer is retried once and then reported as a failure; an unreachable or failing
//! server stops the run and writes nothing.

use super::descriptions::Descriptions;
use super::llm::{ChatMessage, ChatRequest, LlmClient, LlmError};
// Times in the canonical xsd:dateTime form the store keeps, so the Turtle file written beside
// the store holds the very same literal (`…14.120Z` would be stored as `…14.12Z`).
use crate::kb::{date_time, parse_bytes, KbError, KnowledgeBase, QueryOutcome};
use crate::vocab::{akg, compact, dct, prov, skos, slug, DESCRIPTION, GRAPH, KB, PREFIXES, RUN};
use chrono::{DateTime, SecondsFormat, Utc};
use indicatif::ProgressBar;
use oxigraph::io::{RdfFormat, RdfSerializer};
use oxigraph::model::vocab::rdf;
use oxigraph::model::{Literal, NamedNode, NamedNodeRef, Term, Triple};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// At most this many relations of an entity go into its prompt: enough to ground it, few enough
/// for a small model's context.
pub const MAX_RELATIONS: usize = 15;
/// At most this many synonyms go into a prompt.
const MAX_SYNONYMS: usize = 8;
/// Longest accepted description, in characters: the `sh:maxLength` of
/// `shp:EntityDescription-descriptionText`.
pub const MAX_CHARS: usize = 1000;
/// Shortest accepted description, in characters (the shape's `sh:minLength`).
pub const MIN_CHARS: usize = 10;
/// Default word limit asked of the model.
pub const DEFAULT_MAX_WORDS: usize = 40;

/// An error of `describe`. Each names the entity, graph or file it is about.
#[derive(Debug, Error)]
pub enum AugmentError {
    /// Reading the KB (targets, existing descriptions) failed.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// Reading the facts of one entity failed.
    #[error("reading the facts of <{iri}>: {source}")]
    Facts {
        iri: String,
        #[source]
        source: KbError,
    },
    /// The LLM could not be asked about one entity; the run stops and writes nothing.
    #[error("describing <{iri}>: {source}; nothing was written")]
    Llm {
        iri: String,
        #[source]
        source: LlmError,
    },
    /// The store refused the run's fact graph (e.g. a shape violation); nothing was written.
    #[error("storing fact graph <{graph}>: {source}")]
    Store {
        graph: String,
        #[source]
        source: KbError,
    },
    /// Writing the Turtle file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serialising the run's graph failed.
    #[error("serialising fact graph <{graph}>: {message}")]
    Serialize { graph: String, message: String },
    /// A target is not an IRI (nor a prefixed name with a project prefix).
    #[error("not an IRI: {0:?} (give a full IRI or a prefixed name such as fm:bearing-wear)")]
    BadIri(String),
    /// The options cannot work.
    #[error("invalid describe options: {0}")]
    Options(String),
}

/// Result alias of the augmentation module.
pub type AugmentResult<T> = Result<T, AugmentError>;

/// The akg classes whose entities get descriptions by default.
pub fn default_kinds() -> Vec<String> {
    [
        akg::EQUIPMENT_CLASS,
        akg::FAILURE_MODE,
        akg::FAILURE_MODE_CLASS,
        akg::SENSOR,
        akg::COMPONENT_KIND,
        akg::EQUIPMENT_CATEGORY,
    ]
    .iter()
    .map(|n| n.as_str().to_owned())
    .collect()
}

/// What `describe` does.
#[derive(Debug, Clone)]
pub struct DescribeOptions {
    /// Entities to describe (full IRIs or project prefixed names); empty: every entity of
    /// [`Self::kinds`].
    pub iris: Vec<String>,
    /// Classes whose entities are described when [`Self::iris`] is empty.
    pub kinds: Vec<String>,
    /// Also describe entities that already have a generated (not rejected) description.
    pub force: bool,
    /// Describe at most this many entities (after skipping those already described).
    pub limit: Option<usize>,
    /// Word limit asked of the model; answers up to twice as long are accepted.
    pub max_words: usize,
    /// Also write the run's fact graph to this Turtle file (kept in `kb/`, it re-loads).
    pub out: Option<PathBuf>,
    /// Ask the model but write nothing.
    pub dry_run: bool,
    /// Sampling temperature.
    pub temperature: f32,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for DescribeOptions {
    fn default() -> Self {
        Self {
            iris: Vec::new(),
            kinds: default_kinds(),
            force: false,
            limit: None,
            max_words: DEFAULT_MAX_WORDS,
            out: None,
            dry_run: false,
            temperature: 0.0,
            progress: false,
        }
    }
}

/// What a `describe` run did.
#[derive(Debug, Clone, Serialize)]
pub struct DescribeReport {
    /// The run id: start time (UTC, basic ISO 8601) and a short hash, e.g.
    /// `20261204T051500Z-3fa2c1`.
    pub run_id: String,
    /// The fact graph the run writes (or would write).
    pub graph: String,
    /// The model's identifier.
    pub model: String,
    /// Entities described, with their text.
    pub described: Vec<(String, String)>,
    /// Entities that could not be described, with the reason.
    pub failed: Vec<(String, String)>,
    /// Targets skipped because they already have a generated description.
    pub skipped_existing: usize,
    /// True when the graph was written to the store.
    pub committed: bool,
    /// The Turtle file written, if any.
    pub out: Option<PathBuf>,
}

/// What the KB says about one entity, as a prompt shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityFacts {
    /// The entity.
    pub iri: String,
    /// The label of its akg class ("failure mode"), if it has one.
    pub kind: Option<String>,
    /// Its `skos:prefLabel`.
    pub label: String,
    /// Its synonyms.
    pub synonyms: Vec<String>,
    /// Its `skos:definition`.
    pub definition: Option<String>,
    /// Its code (failure-mode classes).
    pub code: Option<String>,
    /// Up to [`MAX_RELATIONS`] relations to other entities, as readable lines.
    pub relations: Vec<String>,
}

/// The entity's KB facts, or `None` when `iri` has no `skos:prefLabel` (not an entity).
pub fn entity_facts(kb: &KnowledgeBase, iri: &str) -> Result<Option<EntityFacts>, KbError> {
    let node = NamedNode::new(iri).map_err(|e| KbError::QuerySyntax(format!("<{iri}>: {e}")))?;
    let e = format!("<{}>", node.as_str());
    let outgoing = rows(
        kb,
        &format!(
            "SELECT DISTINCT ?p ?o ?oLabel ?pLabel WHERE {{
               GRAPH ?g {{ {e} ?p ?o }} FILTER(?g != graph:inferred)
               OPTIONAL {{ ?o skos:prefLabel ?entityLabel }}
               OPTIONAL {{ ?o rdfs:label ?classLabel }}
               BIND(COALESCE(?entityLabel, ?classLabel) AS ?oLabel)
               OPTIONAL {{ ?p rdfs:label ?pLabel }}
             }}"
        ),
    )?;
    let mut label = None;
    let mut kinds = BTreeSet::new();
    let mut synonyms = BTreeSet::new();
    let mut definition = None;
    let mut code = None;
    // (group, line): groups keep one kind of relation together in the prompt.
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut pending_out = Vec::new();
    for row in &outgoing {
        let Some(Term::NamedNode(p)) = &row[0] else {
            continue;
        };
        let object = &row[1];
        let p = p.as_ref();
        if p == rdf::TYPE {
            if let (Some(Term::NamedNode(class)), Some(l)) = (object, literal(&row[2])) {
                if class.as_str().starts_with(crate::vocab::AKG) {
                    kinds.insert(l.to_owned());
                }
            }
        } else if p == skos::PREF_LABEL {
            label = literal(object).map(str::to_owned);
        } else if p == skos::ALT_LABEL {
            synonyms.extend(literal(object).map(str::to_owned));
        } else if p == skos::DEFINITION {
            definition = literal(object).map(str::to_owned);
        } else if p == akg::CODE {
            code = literal(object).map(str::to_owned);
        } else if let (Some(Term::NamedNode(_)), Some(other)) = (object, literal(&row[2])) {
            let relation = property_label(p, literal(&row[3]));
            pending_out.push((format!("1 {relation}"), relation, other.to_owned()));
        }
    }
    let Some(label) = label else {
        return Ok(None);
    };
    for (group, relation, other) in pending_out {
        lines.push((group, format!("{label} — {relation} → {other}")));
    }
    let incoming = rows(
        kb,
        &format!(
            "SELECT DISTINCT ?s ?p ?sLabel ?pLabel WHERE {{
               GRAPH ?g {{ ?s ?p {e} }} FILTER(?g != graph:inferred)
               ?s skos:prefLabel ?sLabel .
               OPTIONAL {{ ?p rdfs:label ?pLabel }}
             }}"
        ),
    )?;
    for row in &incoming {
        let (Some(Term::NamedNode(p)), Some(other)) = (&row[1], literal(&row[2])) else {
            continue;
        };
        if p.as_ref() == rdf::TYPE {
            continue;
        }
        let relation = property_label(p.as_ref(), literal(&row[3]));
        lines.push((
            format!("2 {relation}"),
            format!("{other} — {relation} → {label}"),
        ));
    }
    // Relations in a stable order; the judgments keep theirs (most widely confirmed first).
    lines.sort();
    lines.dedup();
    lines.extend(judgment_lines(kb, &e, iri)?);
    let synonyms: Vec<String> = synonyms
        .into_iter()
        .filter(|s| !s.eq_ignore_ascii_case(&label))
        .take(MAX_SYNONYMS)
        .collect();
    Ok(Some(EntityFacts {
        iri: iri.to_owned(),
        kind: kinds.into_iter().next(),
        label,
        synonyms,
        definition,
        code,
        relations: pick_round_robin(lines, MAX_RELATIONS),
    }))
}

/// The expert judgments (relevant ones, not rejected) the entity takes part in, as lines that
/// say what experts found on which assets.
fn judgment_lines(
    kb: &KnowledgeBase,
    e: &str,
    iri: &str,
) -> Result<Vec<(String, String)>, KbError> {
    let found = rows(
        kb,
        &format!(
            "SELECT DISTINCT ?a ?aLabel ?f ?fLabel ?s ?sLabel WHERE {{
               {{ ?j akg:judgedAsset {e} }} UNION {{ ?j akg:judgedFailureMode {e} }}
               UNION {{ ?j akg:judgedSensor {e} }}
               ?j akg:relevant true ;
                  akg:judgedAsset ?a ; akg:judgedFailureMode ?f ; akg:judgedSensor ?s .
               FILTER NOT EXISTS {{ ?j akg:vettingStatus akg:rejected }}
               ?a skos:prefLabel ?aLabel . ?f skos:prefLabel ?fLabel . ?s skos:prefLabel ?sLabel .
             }}"
        ),
    )?;
    // key line prefix → the labels listed after it
    let mut grouped: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &found {
        let named = |i: usize| match &row[i] {
            Some(Term::NamedNode(n)) => n.as_str() == iri,
            _ => false,
        };
        let label = |i: usize| literal(&row[i]).unwrap_or_default().to_owned();
        let (key, value) = if named(2) {
            (
                format!("relevant sensor per experts: {}", label(5)),
                label(1),
            )
        } else if named(4) {
            (
                format!("failure mode it reveals per experts: {}", label(3)),
                label(1),
            )
        } else if named(0) {
            (
                format!("relevant sensors per experts for {}", label(3)),
                label(5),
            )
        } else {
            continue;
        };
        grouped.entry(key).or_default().insert(value);
    }
    // The judgments shared by the most assets first: when the prompt has room for only a few,
    // it shows the most widely confirmed ones (vibration for bearing wear, say).
    let mut grouped: Vec<(String, BTreeSet<String>)> = grouped.into_iter().collect();
    grouped.sort_by(|(ka, a), (kb, b)| b.len().cmp(&a.len()).then_with(|| ka.cmp(kb)));
    Ok(grouped
        .into_iter()
        .map(|(key, values)| {
            let list = short_list(&values, 4);
            let line = if key.starts_with("relevant sensors per experts for") {
                format!("{key}: {list}")
            } else {
                format!("{key} (on {list})")
            };
            ("3 judgments".to_owned(), line)
        })
        .collect())
}

/// `a, b, c, d and 3 more`.
fn short_list(values: &BTreeSet<String>, max: usize) -> String {
    let shown: Vec<&str> = values.iter().take(max).map(String::as_str).collect();
    let mut list = shown.join(", ");
    if values.len() > max {
        let _ = write!(list, " and {} more", values.len() - max);
    }
    list
}

/// The property's `rdfs:label`, or its local name when the ontology gives none.
fn property_label(p: NamedNodeRef<'_>, label: Option<&str>) -> String {
    match label {
        Some(l) => l.to_owned(),
        None => {
            let compacted = compact(p.as_str());
            compacted
                .rsplit([':', '#', '/'])
                .next()
                .unwrap_or(&compacted)
                .to_owned()
        }
    }
}

/// Takes up to `max` lines, one from each group in turn, so that a class with sixty
/// failure-mode classes still shows its category and its subunits; then lists them group by
/// group, each group sorted.
fn pick_round_robin(lines: Vec<(String, String)>, max: usize) -> Vec<String> {
    // Lines keep their order within a group (duplicates dropped).
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, line) in lines {
        let group = groups.entry(group).or_default();
        if !group.contains(&line) {
            group.push(line);
        }
    }
    let mut iters: Vec<(usize, std::vec::IntoIter<String>)> = groups
        .into_values()
        .enumerate()
        .map(|(i, g)| (i, g.into_iter()))
        .collect();
    let mut taken: Vec<(usize, usize, String)> = Vec::new();
    let mut round = 0;
    while taken.len() < max {
        let mut any = false;
        for (group, lines) in iters.iter_mut() {
            if taken.len() >= max {
                break;
            }
            if let Some(line) = lines.next() {
                taken.push((*group, round, line));
                any = true;
            }
        }
        if !any {
            break;
        }
        round += 1;
    }
    taken.sort();
    taken.into_iter().map(|(_, _, line)| line).collect()
}

/// The prompt for `facts`: what the entity is, what the KB says about it, and what to write.
pub fn build_prompt(facts: &EntityFacts, max_words: usize) -> String {
    let mut p = String::new();
    let _ = writeln!(
        p,
        "You write short descriptions of the entries of an industrial maintenance knowledge base. \
         They are added to search queries, so they must be accurate and specific."
    );
    let _ = writeln!(p);
    match &facts.kind {
        Some(kind) => {
            let _ = writeln!(p, "Entry: {} ({kind})", facts.label);
        }
        None => {
            let _ = writeln!(p, "Entry: {}", facts.label);
        }
    }
    if let Some(code) = &facts.code {
        let _ = writeln!(p, "Code: {code}");
    }
    if !facts.synonyms.is_empty() {
        let _ = writeln!(p, "Also called: {}", facts.synonyms.join("; "));
    }
    if let Some(definition) = &facts.definition {
        let _ = writeln!(p, "Definition: {definition}");
    }
    if !facts.relations.is_empty() {
        let _ = writeln!(p, "Facts from the knowledge base:");
        for line in &facts.relations {
            let _ = writeln!(p, "- {line}");
        }
    }
    let _ = writeln!(p);
    let _ = write!(
        p,
        "Task: describe {} for a maintenance engineer in one or two sentences of at most \
         {max_words} words. Use the facts above; do not invent figures, standards or part \
         numbers. Write plain prose: no lists, no headings, no quotation marks and no preamble \
         such as \"Description:\". Answer with the description only.",
        facts.label
    );
    p
}

/// The follow-up message after an answer that could not be used.
fn retry_prompt(reason: &str, max_words: usize) -> String {
    format!(
        "That answer cannot be used: {reason}. Answer again with only the description: one or \
         two plain sentences, at most {max_words} words, no lists, no preamble."
    )
}

/// Labels models like to put in front of the answer.
const LABELS: &[&str] = &["description:", "answer:", "definition:", "summary:"];
/// Quotes and emphasis models wrap answers in.
const WRAPPERS: &[char] = &['"', '\'', '“', '”', '‘', '’', '`', '*', '_', '«', '»'];

/// Checks and tidies a model's answer: trims it, drops a reasoning block, a preamble line
/// ("Here is a description:"), a "Description:" label and surrounding quotes, joins its lines
/// into one paragraph, and refuses it when it is empty, several paragraphs, a list, or longer
/// than twice `max_words` words (or [`MAX_CHARS`] characters). The error says why, in words
/// that can be sent back to the model.
pub fn clean_output(raw: &str, max_words: usize) -> Result<String, String> {
    let mut text = raw.trim();
    // Reasoning models may emit their thinking first.
    if let Some(rest) = text.strip_prefix("<think>") {
        text = rest
            .split_once("</think>")
            .map(|(_, a)| a)
            .unwrap_or("")
            .trim();
    }
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    // "Here is a concise description of bearing wear:" followed by the answer.
    if lines.len() > 1 && lines[0].ends_with(':') {
        lines.remove(0);
        while lines.first().is_some_and(|l| l.is_empty()) {
            lines.remove(0);
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.iter().any(|l| l.is_empty()) {
        return Err("it has several paragraphs; write one".to_owned());
    }
    if lines.len() > 1 && lines.iter().any(|l| is_list_item(l)) {
        return Err("it is a list; write plain sentences".to_owned());
    }
    let joined = lines
        .iter()
        .map(|l| strip_list_marker(l))
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = joined.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let before = text.clone();
        text = text.trim_matches(WRAPPERS).trim().to_owned();
        for label in LABELS {
            if text
                .get(..label.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(label))
            {
                text = text[label.len()..].trim().to_owned();
                break;
            }
        }
        if text == before {
            break;
        }
    }
    if text.is_empty() {
        return Err("the answer is empty".to_owned());
    }
    let words = text.split_whitespace().count();
    let max = max_words.saturating_mul(2);
    if words > max {
        return Err(format!(
            "it has {words} words, far more than the {max_words} asked for"
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        return Err(format!(
            "it has {chars} characters; at most {MAX_CHARS} fit"
        ));
    }
    if chars < MIN_CHARS {
        return Err("it is too short to describe anything".to_owned());
    }
    Ok(text)
}

fn is_list_item(line: &str) -> bool {
    strip_list_marker(line).len() != line.len()
}

/// `line` without a leading `- `, `* `, `• ` or `1. ` / `1) `.
fn strip_list_marker(line: &str) -> &str {
    for marker in ["- ", "* ", "• "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return rest.trim_start();
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits <= 2 {
        let rest = &line[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return rest.trim_start();
        }
    }
    line
}

fn rows(kb: &KnowledgeBase, query: &str) -> Result<Vec<Vec<Option<Term>>>, KbError> {
    Ok(match kb.query(query)? {
        QueryOutcome::Solutions { rows, .. } => rows,
        _ => Vec::new(),
    })
}

fn literal(term: &Option<Term>) -> Option<&str> {
    match term {
        Some(Term::Literal(l)) => Some(l.value()),
        _ => None,
    }
}

/// A full IRI for `name`: kept when it is one, expanded when it uses a project prefix.
fn expand(name: &str) -> AugmentResult<String> {
    let name = name.trim();
    let name = name
        .strip_prefix('<')
        .and_then(|n| n.strip_suffix('>'))
        .unwrap_or(name);
    let full = match name.split_once(':') {
        Some((prefix, local)) if !local.starts_with("//") => PREFIXES
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, ns)| format!("{ns}{local}"))
            .unwrap_or_else(|| name.to_owned()),
        _ => name.to_owned(),
    };
    NamedNode::new(&full)
        .map(NamedNode::into_string)
        .map_err(|_| AugmentError::BadIri(name.to_owned()))
}

/// The entities to describe, and how many were skipped as already described.
fn select_targets(
    kb: &KnowledgeBase,
    options: &DescribeOptions,
    existing: &Descriptions,
) -> AugmentResult<(Vec<String>, usize)> {
    let mut seen = BTreeSet::new();
    let mut all = Vec::new();
    if options.iris.is_empty() {
        for kind in &options.kinds {
            let kind = expand(kind)?;
            let found = rows(
                kb,
                &format!("SELECT DISTINCT ?e WHERE {{ ?e a <{kind}> }} ORDER BY ?e"),
            )?;
            for row in found {
                if let Some(Term::NamedNode(n)) = &row[0] {
                    if seen.insert(n.as_str().to_owned()) {
                        all.push(n.as_str().to_owned());
                    }
                }
            }
        }
    } else {
        for iri in &options.iris {
            let iri = expand(iri)?;
            if seen.insert(iri.clone()) {
                all.push(iri);
            }
        }
    }
    let before = all.len();
    if !options.force {
        all = existing.missing(&all);
    }
    let skipped = before - all.len();
    if let Some(limit) = options.limit {
        all.truncate(limit);
    }
    Ok((all, skipped))
}

/// `20261204T051500Z-3fa2c1`: readable, sortable, and unique even for runs started in the same
/// second (the hash covers the nanoseconds, the model and the targets).
fn run_id(started: DateTime<Utc>, model: &str, targets: &[String]) -> String {
    let mut hash = Sha256::new();
    hash.update(
        started
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
            .as_bytes(),
    );
    hash.update(model.as_bytes());
    for t in targets {
        hash.update(b"\n");
        hash.update(t.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("{}-{}", started.format("%Y%m%dT%H%M%SZ"), &digest[..6])
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The IRI of the model as a `prov:SoftwareAgent`: a slug for people plus a hash of the exact
/// model id, so that ids differing only in case or punctuation stay apart.
fn agent_iri(model: &str) -> String {
    let s = slug(model);
    let h = &sha256_hex(model)[..8];
    if s.is_empty() {
        format!("{}model/{h}", crate::vocab::SOURCE)
    } else {
        format!("{}model/{s}-{h}", crate::vocab::SOURCE)
    }
}

/// The IRI of the description of `entity` written in run `run_id`.
fn description_iri(entity: &str, run_id: &str) -> String {
    let local = match entity.strip_prefix(KB) {
        Some(path) if !path.is_empty() => path.replace('/', "--"),
        _ => format!("x-{}", &sha256_hex(entity)[..16]),
    };
    format!("{DESCRIPTION}{local}--{run_id}")
}

fn en(text: &str) -> Literal {
    Literal::new_language_tagged_literal_unchecked(text, "en")
}

/// One successful description.
struct Written {
    entity: String,
    text: String,
    prompt_sha256: String,
}

/// Everything a run writes, as triples of its one fact graph.
fn run_triples(
    run_id: &str,
    graph: &NamedNode,
    model: &str,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
    written: &[Written],
) -> AugmentResult<Vec<Triple>> {
    let node = |iri: String| NamedNode::new(iri.clone()).map_err(|_| AugmentError::BadIri(iri));
    let agent = node(agent_iri(model))?;
    let activity = node(format!("{RUN}describe-{run_id}"))?;
    let mut t = vec![
        Triple::new(graph.clone(), rdf::TYPE, akg::FACT_GRAPH),
        Triple::new(
            graph.clone(),
            dct::TITLE,
            en(&format!(
                "Entity descriptions written by {model} (describe run {run_id})"
            )),
        ),
        Triple::new(graph.clone(), prov::WAS_ATTRIBUTED_TO, agent.clone()),
        Triple::new(graph.clone(), akg::VETTING_STATUS, akg::PROPOSED),
        Triple::new(graph.clone(), prov::GENERATED_AT_TIME, date_time(ended)),
        Triple::new(graph.clone(), prov::WAS_GENERATED_BY, activity.clone()),
        Triple::new(agent.clone(), rdf::TYPE, prov::SOFTWARE_AGENT),
        Triple::new(agent.clone(), rdf::TYPE, akg::SOURCE),
        Triple::new(agent.clone(), skos::PREF_LABEL, en(model)),
        Triple::new(
            agent.clone(),
            akg::MODEL_NAME,
            Literal::new_simple_literal(model),
        ),
        Triple::new(activity.clone(), rdf::TYPE, akg::DESCRIPTION_RUN),
        Triple::new(activity.clone(), rdf::TYPE, prov::ACTIVITY),
        Triple::new(activity.clone(), prov::WAS_ASSOCIATED_WITH, agent.clone()),
        Triple::new(activity.clone(), prov::STARTED_AT_TIME, date_time(started)),
        Triple::new(activity.clone(), prov::ENDED_AT_TIME, date_time(ended)),
    ];
    for w in written {
        let d = node(description_iri(&w.entity, run_id))?;
        let entity = node(w.entity.clone())?;
        t.extend([
            Triple::new(d.clone(), rdf::TYPE, akg::ENTITY_DESCRIPTION),
            Triple::new(d.clone(), akg::DESCRIBES, entity),
            Triple::new(d.clone(), akg::DESCRIPTION_TEXT, en(&w.text)),
            Triple::new(
                d.clone(),
                akg::PROMPT_SHA256,
                Literal::new_simple_literal(&w.prompt_sha256),
            ),
            Triple::new(d.clone(), akg::VETTING_STATUS, akg::PROPOSED),
            Triple::new(d.clone(), prov::WAS_GENERATED_BY, activity.clone()),
            Triple::new(d, prov::WAS_ATTRIBUTED_TO, agent.clone()),
        ]);
    }
    Ok(t)
}

/// The run's graph as Turtle, subjects sorted (the graph first), with the project prefixes.
fn turtle(graph: &NamedNode, model: &str, triples: &mut [Triple]) -> AugmentResult<Vec<u8>> {
    let fail = |message: String| AugmentError::Serialize {
        graph: graph.as_str().to_owned(),
        message,
    };
    triples.sort_by_key(|t| {
        (
            t.subject.to_string(),
            t.predicate.to_string(),
            t.object.to_string(),
        )
    });
    let mut out = format!(
        "# Entity descriptions written by the language model {model:?} for query augmentation.\n\
         # Written by `assetkg describe`; proposed until a knowledge engineer vets them.\n\n"
    )
    .into_bytes();
    let mut serializer = RdfSerializer::from_format(RdfFormat::Turtle);
    let extra = [("desc", DESCRIPTION), ("run", RUN)];
    for (prefix, iri) in PREFIXES.iter().chain(extra.iter()) {
        serializer = serializer
            .with_prefix(*prefix, *iri)
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut writer = serializer.for_writer(&mut out);
    for t in triples.iter() {
        writer
            .serialize_triple(t)
            .map_err(|e| fail(e.to_string()))?;
    }
    writer.finish().map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

/// Asks the model once, and once more with the reason when the answer cannot be used. The
/// outer error is a failing backend; the inner one a bad answer.
async fn ask(
    llm: &dyn LlmClient,
    prompt: &str,
    options: &DescribeOptions,
) -> Result<Result<String, String>, LlmError> {
    let max_tokens = u32::try_from(options.max_words.saturating_mul(4).max(64)).unwrap_or(u32::MAX);
    let request = |messages: Vec<ChatMessage>| ChatRequest {
        messages,
        max_tokens,
        temperature: options.temperature,
        stop: Vec::new(),
    };
    let mut messages = vec![ChatMessage::user(prompt)];
    let first = llm.chat(&request(messages.clone())).await?;
    let reason = match clean_output(&first.text, options.max_words) {
        Ok(text) => return Ok(Ok(text)),
        Err(reason) => reason,
    };
    // An empty assistant turn is refused by some servers; the follow-up says it was empty.
    if !first.text.trim().is_empty() {
        messages.push(ChatMessage::assistant(first.text));
    }
    messages.push(ChatMessage::user(retry_prompt(&reason, options.max_words)));
    let second = llm.chat(&request(messages)).await?;
    Ok(clean_output(&second.text, options.max_words)
        .map_err(|again| format!("answer refused twice: {reason}; then {again}")))
}

fn progress_bar(show: bool, len: usize) -> ProgressBar {
    crate::progress::bar(
        show,
        len as u64,
        "describing {bar:40} {pos}/{len} entities ({eta} left)",
        "",
    )
}

/// Writes the missing descriptions of `options`' targets with `llm` and stores them in one
/// new fact graph (see the module docs). Bad answers become [`DescribeReport::failed`]; a
/// failing LLM backend, an unreadable KB or a refused write is an error, and then nothing is
/// written.
///
/// The KB work (queries, validation) is synchronous and runs on the calling task.
pub async fn describe(
    kb: &KnowledgeBase,
    llm: &dyn LlmClient,
    options: &DescribeOptions,
) -> AugmentResult<DescribeReport> {
    if options.max_words == 0 {
        return Err(AugmentError::Options("max_words must be at least 1".into()));
    }
    let model = llm.model_id().to_owned();
    if model.trim().is_empty() {
        return Err(AugmentError::Options(
            "the llm client names no model, so the descriptions would have no provenance".into(),
        ));
    }
    let started = Utc::now();
    let existing = Descriptions::from_kb(kb)?;
    let (targets, skipped_existing) = select_targets(kb, options, &existing)?;
    let run_id = run_id(started, &model, &targets);
    let graph = NamedNode::new(format!("{GRAPH}descriptions-{run_id}"))
        .map_err(|_| AugmentError::BadIri(format!("{GRAPH}descriptions-{run_id}")))?;
    tracing::info!(run = %run_id, model = %model, targets = targets.len(), skipped_existing, "describe run");

    let mut written = Vec::new();
    let mut failed = Vec::new();
    let bar = progress_bar(options.progress, targets.len());
    for iri in &targets {
        bar.inc(1);
        let facts = entity_facts(kb, iri).map_err(|source| AugmentError::Facts {
            iri: iri.clone(),
            source,
        })?;
        let Some(facts) = facts else {
            tracing::warn!(entity = %iri, "not an entity of the knowledge base");
            failed.push((
                iri.clone(),
                "not an entity of the knowledge base (no skos:prefLabel)".to_owned(),
            ));
            continue;
        };
        let prompt = build_prompt(&facts, options.max_words);
        let answer = ask(llm, &prompt, options)
            .await
            .map_err(|source| AugmentError::Llm {
                iri: iri.clone(),
                source,
            })?;
        match answer {
            Ok(text) => {
                tracing::debug!(entity = %iri, %text, "described");
                written.push(Written {
                    entity: iri.clone(),
                    text,
                    prompt_sha256: sha256_hex(&prompt),
                });
            }
            Err(reason) => {
                tracing::warn!(entity = %iri, %reason, "no usable description");
                failed.push((iri.clone(), reason));
            }
        }
    }
    bar.finish_and_clear();
    let ended = Utc::now();

    let mut report = DescribeReport {
        run_id: run_id.clone(),
        graph: graph.as_str().to_owned(),
        model: model.clone(),
        described: written
            .iter()
            .map(|w| (w.entity.clone(), w.text.clone()))
            .collect(),
        failed,
        skipped_existing,
        committed: false,
        out: None,
    };
    if written.is_empty() || options.dry_run {
        tracing::info!(run = %run_id, described = report.described.len(), failed = report.failed.len(), dry_run = options.dry_run, "nothing written");
        return Ok(report);
    }

    let mut triples = run_triples(&run_id, &graph, &model, started, ended, &written)?;
    let bytes = turtle(&graph, &model, &mut triples)?;
    let path = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("describe-{run_id}.ttl")));
    // Parse our own Turtle back, so that the store gets exactly what the file holds.
    let parsed =
        parse_bytes(&path, &bytes, RdfFormat::Turtle).map_err(|source| AugmentError::Store {
            graph: graph.as_str().to_owned(),
            source,
        })?;
    let temp = match &options.out {
        Some(out) => Some(write_temp(out, &run_id, &bytes)?),
        None => None,
    };
    if let Err(source) = kb.load_parsed(vec![parsed]) {
        if let Some(temp) = &temp {
            let _ = std::fs::remove_file(temp);
        }
        return Err(AugmentError::Store {
            graph: graph.as_str().to_owned(),
            source,
        });
    }
    report.committed = true;
    if let (Some(temp), Some(out)) = (temp, &options.out) {
        std::fs::rename(&temp, out).map_err(|source| AugmentError::Io {
            path: out.clone(),
            source,
        })?;
        report.out = Some(out.clone());
    }
    tracing::info!(run = %run_id, graph = %compact(graph.as_str()), described = report.described.len(), failed = report.failed.len(), "descriptions stored");
    Ok(report)
}

/// Writes `bytes` next to `out` under a temporary name; renamed into place after the commit.
fn write_temp(out: &Path, run_id: &str, bytes: &[u8]) -> AugmentResult<PathBuf> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "descriptions.ttl".to_owned());
    let temp = out.with_file_name(format!(".{name}.{run_id}.tmp"));
    std::fs::write(&temp, bytes).map_err(|source| AugmentError::Io {
        path: temp.clone(),
        source,
    })?;
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_are_written_in_canonical_form() {
        let at = |ms| {
            DateTime::parse_from_rfc3339(&format!("2026-12-04T10:01:14.{ms}Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(date_time(at("120")).value(), "2026-12-04T10:01:14.12Z");
        assert_eq!(date_time(at("000")).value(), "2026-12-04T10:01:14Z");
        assert_eq!(date_time(at("086")).value(), "2026-12-04T10:01:14.086Z");
        // The store keeps exactly what is written.
        let stored: oxigraph::model::Literal = date_time(at("100"));
        let store = oxigraph::store::Store::new().unwrap();
        let node = oxigraph::model::NamedNode::new("https://example.org/x").unwrap();
        store
            .insert(&oxigraph::model::Quad::new(
                node.clone(),
                node.clone(),
                stored.clone(),
                oxigraph::model::GraphName::DefaultGraph,
            ))
            .unwrap();
        let back = store.iter().next().unwrap().unwrap().object;
        assert_eq!(back, oxigraph::model::Term::Literal(stored));
    }

    fn facts() -> EntityFacts {
        EntityFacts {
            iri: "https://w3id.org/assetkg/kb/failure-mode/bearing-wear".into(),
            kind: Some("failure mode".into()),
            label: "bearing wear".into(),
            synonyms: vec!["worn bearing".into()],
            definition: Some("Gradual loss of material from bearing surfaces.".into()),
            code: None,
            relations: vec!["bearing wear — in failure-mode class → vibration".into()],
        }
    }

    #[test]
    fn the_prompt_holds_the_facts_and_the_rules() {
        let prompt = build_prompt(&facts(), 30);
        for part in [
            "Entry: bearing wear (failure mode)",
            "Also called: worn bearing",
            "Definition: Gradual loss of material from bearing surfaces.",
            "- bearing wear — in failure-mode class → vibration",
            "at most 30 words",
            "no lists",
        ] {
            assert!(prompt.contains(part), "{part:?} missing from:\n{prompt}");
        }
        let bare = EntityFacts {
            kind: None,
            synonyms: vec![],
            definition: None,
            relations: vec![],
            ..facts()
        };
        let prompt = build_prompt(&bare, 30);
        assert!(prompt.contains("Entry: bearing wear\n"));
        assert!(!prompt.contains("Facts from the knowledge base"));
    }

    #[test]
    fn round_robin_keeps_every_kind_of_relation() {
        let mut lines: Vec<(String, String)> = (0..30)
            .map(|i| ("1 applies to".to_owned(), format!("fmc {i:02}")))
            .collect();
        lines.push(("0 in category".into(), "category".into()));
        lines.push(("2 subunit of".into(), "subunit b".into()));
        lines.push(("2 subunit of".into(), "subunit a".into()));
        lines.push(("2 subunit of".into(), "subunit b".into()));
        let picked = pick_round_robin(lines, 5);
        // Groups in key order; within a group the caller's order, duplicates dropped.
        assert_eq!(
            picked,
            vec!["category", "fmc 00", "fmc 01", "subunit b", "subunit a"]
        );
        assert!(pick_round_robin(Vec::new(), 5).is_empty());
    }

    #[test]
    fn clean_output_strips_wrappers_and_preambles() {
        let ok = |raw: &str| clean_output(raw, 40).expect("accepted");
        assert_eq!(
            ok("  \"Bearing wear is the gradual loss of material.\"  "),
            "Bearing wear is the gradual loss of material."
        );
        assert_eq!(
            ok("Description: Bearing wear is the gradual loss of material."),
            "Bearing wear is the gradual loss of material."
        );
        assert_eq!(
            ok("**Description:** “Bearing wear is the gradual loss of material.”"),
            "Bearing wear is the gradual loss of material."
        );
        assert_eq!(
            ok("Here is a description of bearing wear:\n\nBearing wear raises\nvibration."),
            "Bearing wear raises vibration."
        );
        assert_eq!(
            ok("<think>the user wants</think>\nBearing wear raises vibration."),
            "Bearing wear raises vibration."
        );
    }

    #[test]
    fn clean_output_refuses_bad_answers_with_a_reason() {
        let err = |raw: &str| clean_output(raw, 10).expect_err("refused");
        assert!(err("").contains("empty"));
        assert!(err("  \"\"  ").contains("empty"));
        assert!(err("Description:").contains("empty"));
        assert!(err("First paragraph here.\n\nSecond paragraph here.").contains("paragraphs"));
        assert!(err("- bearing wear\n- vibration").contains("list"));
        assert!(err("1. one thing\n2. another").contains("list"));
        let long = vec!["word"; 21].join(" ");
        assert!(err(&long).contains("21 words"), "{}", err(&long));
        assert!(
            clean_output(&vec!["word"; 20].join(" "), 10).is_ok(),
            "twice the limit is accepted"
        );
        assert!(err("Too short").contains("short"));
        let huge = vec!["x".repeat(60); 20].join(" ");
        assert!(err(&huge).contains("characters"));
    }

    #[test]
    fn iris_expand_from_project_prefixes() {
        assert_eq!(
            expand("fm:bearing-wear").expect("iri"),
            "https://w3id.org/assetkg/kb/failure-mode/bearing-wear"
        );
        assert_eq!(
            expand("<https://w3id.org/assetkg/kb/class/pump>").expect("iri"),
            "https://w3id.org/assetkg/kb/class/pump"
        );
        assert!(matches!(expand("not an iri"), Err(AugmentError::BadIri(_))));
    }

    #[test]
    fn run_ids_and_iris_are_readable_and_distinct() {
        let t = DateTime::parse_from_rfc3339("2026-12-04T05:15:00.5Z")
            .expect("time")
            .with_timezone(&Utc);
        let a = run_id(t, "m", &["x".into()]);
        let b = run_id(t, "m", &["y".into()]);
        assert!(a.starts_with("20261204T051500Z-") && a.len() == 23, "{a}");
        assert_ne!(a, b);
        assert_eq!(
            description_iri("https://w3id.org/assetkg/kb/failure-mode/bearing-wear", &a),
            format!("https://w3id.org/assetkg/kb/description/failure-mode--bearing-wear--{a}")
        );
        assert_ne!(agent_iri("Qwen"), agent_iri("qwen"));
        assert!(agent_iri("qwen2.5:0.5b")
            .starts_with("https://w3id.org/assetkg/source/model/qwen2-5-0-5b-"));
    }
}
