//! The documents of the entity index: one per KB entity, with the text that gets embedded and
//! searched, the equipment classes it belongs to (for asset filters) and its vetting status.
//!
//! Everything is read with a handful of SPARQL queries over the union of the fact graphs and
//! assembled here, so the text of an entity depends only on the KB and the document is
//! deterministic (sorted by IRI, synonyms sorted) — which is what lets the content hash decide
//! whether an entity must be re-embedded.

use crate::kb::{KbResult, KnowledgeBase, QueryOutcome};
use crate::vocab::slug;
use oxigraph::model::Term;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The kinds of entity the index holds, in the order a document's kind is chosen when an
/// entity has several types (it never has in the bundled KB).
pub const KINDS: &[&str] = &[
    EQUIPMENT_CATEGORY,
    EQUIPMENT_CLASS,
    EQUIPMENT_TYPE,
    SUBUNIT,
    MAINTAINABLE_ITEM,
    COMPONENT_KIND,
    FAILURE_MODE_CLASS,
    FAILURE_MODE,
    FAILURE_DESCRIPTION,
    SENSOR,
];

/// Kind of `akg:EquipmentCategory` entities.
pub const EQUIPMENT_CATEGORY: &str = "equipment_category";
/// Kind of `akg:EquipmentClass` entities (the assets).
pub const EQUIPMENT_CLASS: &str = "equipment_class";
/// Kind of `akg:EquipmentType` entities.
pub const EQUIPMENT_TYPE: &str = "equipment_type";
/// Kind of `akg:Subunit` entities.
pub const SUBUNIT: &str = "subunit";
/// Kind of `akg:MaintainableItem` entities.
pub const MAINTAINABLE_ITEM: &str = "maintainable_item";
/// Kind of `akg:ComponentKind` entities.
pub const COMPONENT_KIND: &str = "component_kind";
/// Kind of `akg:FailureModeClass` entities.
pub const FAILURE_MODE_CLASS: &str = "failure_mode_class";
/// Kind of `akg:FailureMode` entities.
pub const FAILURE_MODE: &str = "failure_mode";
/// Kind of `akg:FailureDescription` entities.
pub const FAILURE_DESCRIPTION: &str = "failure_description";
/// Kind of `akg:Sensor` entities.
pub const SENSOR: &str = "sensor";

/// Vetting status of a document whose label comes from a vetted fact graph.
pub const VETTED: &str = "vetted";
/// Vetting status of every other document.
pub const PROPOSED: &str = "proposed";

/// The ontology class (local name in `akg:`) and the text prefix of each kind.
fn kind_spec(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        EQUIPMENT_CATEGORY => ("EquipmentCategory", "Equipment category"),
        EQUIPMENT_CLASS => ("EquipmentClass", "Equipment class"),
        EQUIPMENT_TYPE => ("EquipmentType", "Equipment type"),
        SUBUNIT => ("Subunit", "Subunit"),
        MAINTAINABLE_ITEM => ("MaintainableItem", "Component"),
        COMPONENT_KIND => ("ComponentKind", "Component kind"),
        FAILURE_MODE_CLASS => ("FailureModeClass", "Failure class"),
        FAILURE_MODE => ("FailureMode", "Failure mode"),
        FAILURE_DESCRIPTION => ("FailureDescription", "Failure description"),
        SENSOR => ("Sensor", "Sensor"),
        _ => return None,
    })
}

/// The full IRI of the ontology class of `kind`.
pub fn class_of_kind(kind: &str) -> Option<String> {
    kind_spec(kind).map(|(class, _)| format!("{}{class}", crate::vocab::AKG))
}

/// The kind whose ontology class is `class_iri`.
pub fn kind_of_class(class_iri: &str) -> Option<&'static str> {
    let local = class_iri.strip_prefix(crate::vocab::AKG)?;
    KINDS
        .iter()
        .copied()
        .find(|k| kind_spec(k).is_some_and(|(class, _)| class == local))
}

/// True when `kind` is one of [`KINDS`].
pub fn is_kind(kind: &str) -> bool {
    kind_spec(kind).is_some()
}

/// One entity as the index stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityDoc {
    /// The entity IRI (the row key).
    pub iri: String,
    /// One of [`KINDS`].
    pub kind: String,
    /// Its `skos:prefLabel`.
    pub label: String,
    /// What gets embedded and full-text indexed: kind, label, context, definition, synonyms.
    pub text: String,
    /// IRIs of the equipment classes the entity belongs to, sorted (empty when it belongs to
    /// none in particular, like a category or a failure description).
    pub assets: Vec<String>,
    /// [`VETTED`] or [`PROPOSED`].
    pub vetting_status: String,
    /// SHA-256 (hex) of kind, text, assets and status: a changed hash means re-embed.
    pub content_hash: String,
}

impl EntityDoc {
    /// A document with its content hash computed.
    pub fn new(
        iri: String,
        kind: String,
        label: String,
        text: String,
        assets: Vec<String>,
        vetting_status: String,
    ) -> Self {
        let content_hash = content_hash(&kind, &text, &assets, &vetting_status);
        Self {
            iri,
            kind,
            label,
            text,
            assets,
            vetting_status,
            content_hash,
        }
    }

    /// Recomputes [`Self::content_hash`] after a field was changed.
    pub fn rehash(&mut self) {
        self.content_hash =
            content_hash(&self.kind, &self.text, &self.assets, &self.vetting_status);
    }
}

/// SHA-256 of the fields that decide the stored row. Fields are separated by control characters
/// that never occur in them, so that moving text between fields changes the hash.
fn content_hash(kind: &str, text: &str, assets: &[String], status: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0x1f]);
    hasher.update(text.as_bytes());
    hasher.update([0x1f]);
    for asset in assets {
        hasher.update(asset.as_bytes());
        hasher.update([0x1e]);
    }
    hasher.update([0x1f]);
    hasher.update(status.as_bytes());
    hex::encode(hasher.finalize())
}

/// What the queries gather about one entity before its text is written.
#[derive(Default)]
struct Gathered {
    kind_rank: usize,
    label: String,
    definition: Option<String>,
    synonyms: BTreeSet<String>,
    /// The code of a failure-mode class.
    code: Option<String>,
    /// Label of the class of a type, subunit or item; of the category of a class.
    parent: Option<String>,
    /// Label of the subunit of a maintainable item.
    subunit: Option<String>,
    assets: BTreeSet<String>,
    vetted: bool,
}

/// `VALUES ?type { akg:EquipmentCategory … }` over all kinds.
fn type_values() -> String {
    let types: Vec<String> = KINDS
        .iter()
        .filter_map(|k| kind_spec(k))
        .map(|(class, _)| format!("akg:{class}"))
        .collect();
    format!("VALUES ?type {{ {} }}", types.join(" "))
}

/// Label literals in English or without a language tag (the KB writes `@en`).
const ENGLISH: &str = r#"(langMatches(lang(?l), "en") || lang(?l) = "")"#;

/// Extracts one document per entity of the [`KINDS`], sorted by IRI.
pub fn entity_documents(kb: &KnowledgeBase) -> KbResult<Vec<EntityDoc>> {
    let values = type_values();
    let mut entities: BTreeMap<String, Gathered> = BTreeMap::new();

    // Entities, their kind, label and definition.
    let q = format!(
        "SELECT ?e ?type ?l ?definition WHERE {{ {values} ?e a ?type ; skos:prefLabel ?l .
           FILTER {ENGLISH}
           OPTIONAL {{ ?e skos:definition ?definition }} }}"
    );
    for row in select(kb, &q)? {
        let (Some(iri), Some(type_iri), Some(label)) = (iri(&row[0]), iri(&row[1]), value(&row[2]))
        else {
            continue;
        };
        let Some(rank) = KINDS.iter().position(|k| {
            kind_spec(k).is_some_and(|(c, _)| type_iri == format!("{}{c}", crate::vocab::AKG))
        }) else {
            continue;
        };
        let entry = entities.entry(iri).or_insert_with(|| Gathered {
            kind_rank: rank,
            ..Gathered::default()
        });
        entry.kind_rank = entry.kind_rank.min(rank);
        // Several labels or definitions would break the shapes; keep the smallest, so the
        // document stays deterministic even then.
        if entry.label.is_empty() || label < entry.label {
            entry.label = label;
        }
        if let Some(def) = value(&row[3]) {
            if entry.definition.as_ref().is_none_or(|d| def < *d) {
                entry.definition = Some(def);
            }
        }
    }

    // Synonyms.
    let q = format!(
        "SELECT ?e ?l WHERE {{ {values} ?e a ?type ; skos:altLabel ?l . FILTER {ENGLISH} }}"
    );
    for row in select(kb, &q)? {
        if let (Some(iri), Some(alt)) = (iri(&row[0]), value(&row[1])) {
            if let Some(entry) = entities.get_mut(&iri) {
                entry.synonyms.insert(alt);
            }
        }
    }

    // Context that disambiguates a label: "power transmission" is a subunit of many classes.
    let q = "SELECT ?e ?code ?parent ?subunit WHERE {
          { ?e a akg:FailureModeClass ; akg:code ?code }
          UNION { ?e a akg:EquipmentClass ; akg:inCategory/skos:prefLabel ?parent }
          UNION { ?e a akg:EquipmentType ; akg:typeOf/skos:prefLabel ?parent }
          UNION { ?e a akg:Subunit ; akg:subunitOf/skos:prefLabel ?parent }
          UNION { ?e a akg:MaintainableItem ; akg:partOf ?s .
                  ?s skos:prefLabel ?subunit ; akg:subunitOf/skos:prefLabel ?parent } }";
    for row in select(kb, q)? {
        let Some(entry) = iri(&row[0]).and_then(|i| entities.get_mut(&i)) else {
            continue;
        };
        if let Some(code) = value(&row[1]) {
            entry.code = Some(code);
        }
        if let Some(parent) = value(&row[2]) {
            entry.parent = Some(parent);
        }
        if let Some(subunit) = value(&row[3]) {
            entry.subunit = Some(subunit);
        }
    }

    // The equipment classes each entity belongs to. Failure descriptions get none: their
    // failure-mode class applies to dozens of classes, which would make the filter useless.
    let q = "SELECT DISTINCT ?e ?class WHERE {
          { ?e a akg:EquipmentClass . BIND(?e AS ?class) }
          UNION { ?e akg:typeOf ?class }
          UNION { ?e akg:subunitOf ?class }
          UNION { ?e akg:partOf/akg:subunitOf ?class }
          UNION { ?class akg:hasMonitoredProperty ?e . ?e a akg:Sensor }
          UNION { ?class akg:hasFailureMode ?e }
          UNION { ?e a akg:FailureModeClass ; akg:appliesTo ?class }
          ?class a akg:EquipmentClass }";
    for row in select(kb, q)? {
        if let (Some(iri), Some(class)) = (iri(&row[0]), iri(&row[1])) {
            if let Some(entry) = entities.get_mut(&iri) {
                entry.assets.insert(class);
            }
        }
    }

    // Vetted: the label triple sits in a fact graph whose status is vetted.
    let q = "SELECT DISTINCT ?e WHERE {
          ?g akg:vettingStatus akg:vetted . GRAPH ?g { ?e skos:prefLabel ?l } }";
    for row in select(kb, q)? {
        if let Some(entry) = iri(&row[0]).and_then(|i| entities.get_mut(&i)) {
            entry.vetted = true;
        }
    }

    Ok(entities
        .into_iter()
        .map(|(iri, g)| {
            let kind = KINDS[g.kind_rank];
            let text = document_text(kind, &g);
            let status = if g.vetted { VETTED } else { PROPOSED };
            EntityDoc::new(
                iri,
                kind.to_owned(),
                g.label,
                text,
                g.assets.into_iter().collect(),
                status.to_owned(),
            )
        })
        .collect())
}

/// "Component: radial bearing (power transmission of pump). <definition> Also called: a, b."
fn document_text(kind: &str, g: &Gathered) -> String {
    let prefix = kind_spec(kind).map_or("Entity", |(_, p)| p);
    let qualifier = match kind {
        FAILURE_MODE_CLASS => g.code.clone(),
        EQUIPMENT_CLASS => g.parent.clone(),
        EQUIPMENT_TYPE => g.parent.as_ref().map(|c| format!("type of {c}")),
        SUBUNIT => g.parent.as_ref().map(|c| format!("of {c}")),
        MAINTAINABLE_ITEM => match (&g.subunit, &g.parent) {
            (Some(s), Some(c)) => Some(format!("{s} of {c}")),
            (None, Some(c)) => Some(format!("of {c}")),
            (Some(s), None) => Some(s.clone()),
            (None, None) => None,
        },
        _ => None,
    };
    let mut text = format!("{prefix}: {}", g.label);
    if let Some(q) = qualifier {
        text.push_str(&format!(" ({q})"));
    }
    text.push('.');
    if let Some(def) = g
        .definition
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        text.push(' ');
        text.push_str(def);
        if !def.ends_with(['.', '!', '?']) {
            text.push('.');
        }
    }
    let label = g.label.to_lowercase();
    let synonyms: Vec<&str> = g
        .synonyms
        .iter()
        .map(String::as_str)
        .filter(|s| s.to_lowercase() != label)
        .collect();
    if !synonyms.is_empty() {
        text.push_str(" Also called: ");
        text.push_str(&synonyms.join(", "));
        text.push('.');
    }
    text
}

/// Maps an asset name to the IRI of its equipment class: a full IRI, a prefixed name
/// (`cls:electric-motor`), a label or synonym ("Electric Motor", case-insensitive), or a slug
/// ("electric-motor"). `None` when no equipment class matches.
pub fn resolve_asset(kb: &KnowledgeBase, name: &str) -> KbResult<Option<String>> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let q = "SELECT ?class ?pref ?l WHERE { ?class a akg:EquipmentClass ; skos:prefLabel ?pref .
           OPTIONAL { ?class skos:altLabel ?l } }";
    // class IRI → (prefLabel, altLabels), sorted by IRI for a deterministic first match.
    let mut classes: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for row in select(kb, q)? {
        let (Some(class), Some(pref)) = (iri(&row[0]), value(&row[1])) else {
            continue;
        };
        let entry = classes.entry(class).or_insert_with(|| (pref, Vec::new()));
        if let Some(alt) = value(&row[2]) {
            entry.1.push(alt);
        }
    }

    let expanded = crate::vocab::expand(name);
    if classes.contains_key(&expanded) {
        return Ok(Some(expanded));
    }
    let wanted = name.to_lowercase();
    let matches = |label: &String| label.to_lowercase() == wanted;
    let by_pref = classes.iter().find(|(_, (pref, _))| matches(pref));
    let by_alt = || {
        classes
            .iter()
            .find(|(_, (_, alts))| alts.iter().any(matches))
    };
    let by_slug = || {
        let wanted = slug(name);
        classes
            .keys()
            .find(|iri| iri.rsplit('/').next() == Some(wanted.as_str()))
    };
    Ok(by_pref
        .or_else(by_alt)
        .map(|(iri, _)| iri)
        .or_else(by_slug)
        .cloned())
}

/// `cls:pump` → the full IRI, when the prefix is one of the project's.
/// Runs a SELECT and returns its rows.
pub(crate) fn select(kb: &KnowledgeBase, sparql: &str) -> KbResult<Vec<Vec<Option<Term>>>> {
    Ok(match kb.query(sparql)? {
        QueryOutcome::Solutions { rows, .. } => rows,
        _ => Vec::new(),
    })
}

pub(crate) fn iri(term: &Option<Term>) -> Option<String> {
    match term {
        Some(Term::NamedNode(n)) => Some(n.as_str().to_owned()),
        _ => None,
    }
}

pub(crate) fn value(term: &Option<Term>) -> Option<String> {
    match term {
        Some(Term::Literal(l)) => Some(l.value().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_kind_label_context_definition_and_synonyms() {
        let g = Gathered {
            label: "radial bearing".into(),
            definition: Some("The bearing that carries the shaft".into()),
            synonyms: ["journal bearing".to_owned(), "Radial Bearing".to_owned()].into(),
            parent: Some("pump".into()),
            subunit: Some("power transmission".into()),
            ..Gathered::default()
        };
        assert_eq!(
            document_text(MAINTAINABLE_ITEM, &g),
            "Component: radial bearing (power transmission of pump). The bearing that carries \
             the shaft. Also called: journal bearing."
        );
        let g = Gathered {
            label: "abnormal instrument reading".into(),
            code: Some("AIR".into()),
            ..Gathered::default()
        };
        assert_eq!(
            document_text(FAILURE_MODE_CLASS, &g),
            "Failure class: abnormal instrument reading (AIR)."
        );
    }

    #[test]
    fn hash_changes_with_every_field() {
        let doc = EntityDoc::new(
            "x".into(),
            SENSOR.into(),
            "l".into(),
            "t".into(),
            vec!["a".into()],
            PROPOSED.into(),
        );
        let mut other = doc.clone();
        other.vetting_status = VETTED.into();
        other.rehash();
        assert_ne!(doc.content_hash, other.content_hash);
        let mut other = doc.clone();
        other.assets.clear();
        other.rehash();
        assert_ne!(doc.content_hash, other.content_hash);
        assert_eq!(doc.content_hash.len(), 64);
    }

    #[test]
    fn every_kind_has_a_class_and_prefix() {
        assert!(KINDS.iter().all(|k| is_kind(k)));
        assert!(!is_kind("pump"));
    }
}
