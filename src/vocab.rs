//! IRIs of the assetkg ontology and of the W3C vocabularies it builds on, as constants, so that
//! code never spells an IRI twice.

use oxigraph::model::NamedNodeRef;

/// Namespace of the ontology (classes and properties).
pub const AKG: &str = "https://w3id.org/assetkg/ontology#";
/// Namespace of the knowledge-base individuals.
pub const KB: &str = "https://w3id.org/assetkg/kb/";
/// Namespace of the fact graphs (one named graph per source file).
pub const GRAPH: &str = "https://w3id.org/assetkg/graph/";
/// Namespace of the sources facts are attributed to.
pub const SOURCE: &str = "https://w3id.org/assetkg/source/";
/// Namespace of the LLM-written entity descriptions (`akg:EntityDescription` nodes).
pub const DESCRIPTION: &str = "https://w3id.org/assetkg/kb/description/";
/// Namespace of the activities (runs) that generated facts, such as one `describe` run.
pub const RUN: &str = "https://w3id.org/assetkg/kb/run/";
/// Namespace of the KB versions: `<VERSION><seq>` is the PROV activity of commit number `seq`.
pub const VERSION: &str = "https://w3id.org/assetkg/kb/version/";
/// Namespace of the curation fact graphs, one per curation edit that adds facts.
pub const CURATION_GRAPH: &str = "https://w3id.org/assetkg/graph/curation/";
/// Namespace of the sources that stand for people or API tokens who curate the KB.
pub const USER_SOURCE: &str = "https://w3id.org/assetkg/source/user/";

/// The prefixes used in every file the project writes and in SPARQL queries it builds.
pub const PREFIXES: &[(&str, &str)] = &[
    ("akg", AKG),
    ("src", SOURCE),
    ("graph", GRAPH),
    ("cat", "https://w3id.org/assetkg/kb/category/"),
    ("cls", "https://w3id.org/assetkg/kb/class/"),
    ("typ", "https://w3id.org/assetkg/kb/type/"),
    ("sub", "https://w3id.org/assetkg/kb/subunit/"),
    ("item", "https://w3id.org/assetkg/kb/item/"),
    ("comp", "https://w3id.org/assetkg/kb/component/"),
    ("fm", "https://w3id.org/assetkg/kb/failure-mode/"),
    ("fmc", "https://w3id.org/assetkg/kb/failure-mode-class/"),
    ("fd", "https://w3id.org/assetkg/kb/failure-description/"),
    ("sensor", "https://w3id.org/assetkg/kb/sensor/"),
    ("judg", "https://w3id.org/assetkg/kb/judgment/"),
    ("shp", "https://w3id.org/assetkg/shapes#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("prov", "http://www.w3.org/ns/prov#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("sosa", "http://www.w3.org/ns/sosa/"),
    ("ssn", "http://www.w3.org/ns/ssn/"),
];

/// `PREFIX` declarations for all of [`PREFIXES`], to put in front of a SPARQL query.
pub fn sparql_prefixes() -> String {
    PREFIXES
        .iter()
        .map(|(p, iri)| format!("PREFIX {p}: <{iri}>\n"))
        .collect()
}

/// Writes `iri` with a prefix of [`PREFIXES`] where one fits, for messages and tables.
pub fn compact(iri: &str) -> String {
    PREFIXES
        .iter()
        .filter(|(_, ns)| iri.starts_with(ns))
        .max_by_key(|(_, ns)| ns.len())
        .map(|(p, ns)| format!("{p}:{}", &iri[ns.len()..]))
        .unwrap_or_else(|| format!("<{iri}>"))
}

/// The full IRI of a prefixed name of [`PREFIXES`] (`fm:bearing-wear`); anything else (a full
/// IRI, an unknown prefix) comes back as it is.
pub fn expand(name: &str) -> String {
    name.split_once(':')
        .and_then(|(prefix, local)| {
            PREFIXES
                .iter()
                .find(|(p, _)| *p == prefix)
                .map(|(_, ns)| format!("{ns}{local}"))
        })
        .unwrap_or_else(|| name.to_owned())
}

macro_rules! iri_consts {
    ($($(#[$doc:meta])* $name:ident = $iri:expr;)*) => {
        $($(#[$doc])* pub const $name: NamedNodeRef<'static> = NamedNodeRef::new_unchecked($iri);)*
    };
}

/// Terms of the assetkg ontology.
pub mod akg {
    use super::NamedNodeRef;
    iri_consts! {
        /// A named graph of facts sharing one source and vetting status.
        FACT_GRAPH = "https://w3id.org/assetkg/ontology#FactGraph";
        SOURCE = "https://w3id.org/assetkg/ontology#Source";
        EQUIPMENT_CATEGORY = "https://w3id.org/assetkg/ontology#EquipmentCategory";
        EQUIPMENT_CLASS = "https://w3id.org/assetkg/ontology#EquipmentClass";
        EQUIPMENT_TYPE = "https://w3id.org/assetkg/ontology#EquipmentType";
        SUBUNIT = "https://w3id.org/assetkg/ontology#Subunit";
        MAINTAINABLE_ITEM = "https://w3id.org/assetkg/ontology#MaintainableItem";
        COMPONENT_KIND = "https://w3id.org/assetkg/ontology#ComponentKind";
        FAILURE_MODE_CLASS = "https://w3id.org/assetkg/ontology#FailureModeClass";
        FAILURE_MODE = "https://w3id.org/assetkg/ontology#FailureMode";
        FAILURE_DESCRIPTION = "https://w3id.org/assetkg/ontology#FailureDescription";
        SENSOR = "https://w3id.org/assetkg/ontology#Sensor";
        SENSOR_RELEVANCE_JUDGMENT = "https://w3id.org/assetkg/ontology#SensorRelevanceJudgment";
        VETTING_STATUS = "https://w3id.org/assetkg/ontology#vettingStatus";
        PROPOSED = "https://w3id.org/assetkg/ontology#proposed";
        VETTED = "https://w3id.org/assetkg/ontology#vetted";
        REJECTED = "https://w3id.org/assetkg/ontology#rejected";
        HAS_MONITORED_PROPERTY = "https://w3id.org/assetkg/ontology#hasMonitoredProperty";
        HAS_FAILURE_MODE = "https://w3id.org/assetkg/ontology#hasFailureMode";
        DETECTABLE_BY = "https://w3id.org/assetkg/ontology#detectableBy";
        JUDGED_ASSET = "https://w3id.org/assetkg/ontology#judgedAsset";
        JUDGED_FAILURE_MODE = "https://w3id.org/assetkg/ontology#judgedFailureMode";
        JUDGED_SENSOR = "https://w3id.org/assetkg/ontology#judgedSensor";
        RELEVANT = "https://w3id.org/assetkg/ontology#relevant";
        SOURCE_ASSET_NAME = "https://w3id.org/assetkg/ontology#sourceAssetName";
        SOURCE_FAILURE_MODE_NAME = "https://w3id.org/assetkg/ontology#sourceFailureModeName";
        SOURCE_SENSOR_NAME = "https://w3id.org/assetkg/ontology#sourceSensorName";
        SOURCE_SHA256 = "https://w3id.org/assetkg/ontology#sourceSha256";
        CODE = "https://w3id.org/assetkg/ontology#code";
        /// A concise description of an entity written for query augmentation (by an LLM).
        ENTITY_DESCRIPTION = "https://w3id.org/assetkg/ontology#EntityDescription";
        /// One run of `describe`: the PROV activity that wrote a set of descriptions.
        DESCRIPTION_RUN = "https://w3id.org/assetkg/ontology#DescriptionRun";
        DESCRIBES = "https://w3id.org/assetkg/ontology#describes";
        DESCRIPTION_TEXT = "https://w3id.org/assetkg/ontology#descriptionText";
        PROMPT_SHA256 = "https://w3id.org/assetkg/ontology#promptSha256";
        MODEL_NAME = "https://w3id.org/assetkg/ontology#modelName";
        /// One commit of the knowledge base (a load or a curation edit): a PROV activity.
        KB_VERSION = "https://w3id.org/assetkg/ontology#KbVersion";
        SEQUENCE = "https://w3id.org/assetkg/ontology#sequence";
        VERSION_ID = "https://w3id.org/assetkg/ontology#versionId";
        PREVIOUS_VERSION = "https://w3id.org/assetkg/ontology#previousVersion";
        ACTION = "https://w3id.org/assetkg/ontology#action";
        ADDED_QUADS = "https://w3id.org/assetkg/ontology#addedQuads";
        REMOVED_QUADS = "https://w3id.org/assetkg/ontology#removedQuads";
        ADDED_COUNT = "https://w3id.org/assetkg/ontology#addedCount";
        REMOVED_COUNT = "https://w3id.org/assetkg/ontology#removedCount";
        ENTITY = "https://w3id.org/assetkg/ontology#Entity";
    }
}

/// The fact graph that holds entailments materialised at load time.
pub const INFERRED_GRAPH: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("https://w3id.org/assetkg/graph/inferred");

/// The fact graph of the ontology file: its axioms cannot be retracted or vetted away by a
/// curation edit, only replaced by loading the ontology again.
pub const ONTOLOGY_GRAPH: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("https://w3id.org/assetkg/graph/ontology");

/// The system graph holding the version log (one PROV activity per commit). It holds no facts:
/// it is left out of the default graph, SHACL validation, the asserted facts and the version id.
pub const HISTORY_GRAPH: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("https://w3id.org/assetkg/graph/history");

/// The system graphs (bookkeeping, not facts).
pub const SYSTEM_GRAPHS: &[NamedNodeRef<'static>] = &[HISTORY_GRAPH];

/// True for a system graph (see [`SYSTEM_GRAPHS`]).
pub fn is_system_graph(graph: NamedNodeRef<'_>) -> bool {
    SYSTEM_GRAPHS.contains(&graph)
}

/// OWL terms.
pub mod owl {
    use super::NamedNodeRef;
    iri_consts! {
        CLASS = "http://www.w3.org/2002/07/owl#Class";
        OBJECT_PROPERTY = "http://www.w3.org/2002/07/owl#ObjectProperty";
        DATATYPE_PROPERTY = "http://www.w3.org/2002/07/owl#DatatypeProperty";
    }
}

/// SKOS terms.
pub mod skos {
    use super::NamedNodeRef;
    iri_consts! {
        PREF_LABEL = "http://www.w3.org/2004/02/skos/core#prefLabel";
        ALT_LABEL = "http://www.w3.org/2004/02/skos/core#altLabel";
        DEFINITION = "http://www.w3.org/2004/02/skos/core#definition";
    }
}

/// PROV-O terms.
pub mod prov {
    use super::NamedNodeRef;
    iri_consts! {
        WAS_ATTRIBUTED_TO = "http://www.w3.org/ns/prov#wasAttributedTo";
        WAS_DERIVED_FROM = "http://www.w3.org/ns/prov#wasDerivedFrom";
        WAS_GENERATED_BY = "http://www.w3.org/ns/prov#wasGeneratedBy";
        GENERATED_AT_TIME = "http://www.w3.org/ns/prov#generatedAtTime";
        ORGANIZATION = "http://www.w3.org/ns/prov#Organization";
        ACTIVITY = "http://www.w3.org/ns/prov#Activity";
        SOFTWARE_AGENT = "http://www.w3.org/ns/prov#SoftwareAgent";
        WAS_ASSOCIATED_WITH = "http://www.w3.org/ns/prov#wasAssociatedWith";
        STARTED_AT_TIME = "http://www.w3.org/ns/prov#startedAtTime";
        ENDED_AT_TIME = "http://www.w3.org/ns/prov#endedAtTime";
        GENERATED = "http://www.w3.org/ns/prov#generated";
    }
}

/// Dublin Core terms.
pub mod dct {
    use super::NamedNodeRef;
    iri_consts! {
        TITLE = "http://purl.org/dc/terms/title";
        LICENSE = "http://purl.org/dc/terms/license";
        SOURCE = "http://purl.org/dc/terms/source";
        BIBLIOGRAPHIC_CITATION = "http://purl.org/dc/terms/bibliographicCitation";
    }
}

/// The local name the project mints for a label: lower case ASCII letters and digits, words
/// joined by `-` ("Oil debris / contamination" → "oil-debris-contamination").
pub fn slug(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_and_hyphenated() {
        assert_eq!(
            slug("Oil debris/ contamination"),
            "oil-debris-contamination"
        );
        assert_eq!(slug("power factor/tanδ"), "power-factor-tan");
        assert_eq!(slug("  (DFR) "), "dfr");
    }

    #[test]
    fn compact_uses_the_longest_namespace() {
        assert_eq!(
            compact("https://w3id.org/assetkg/kb/class/pump"),
            "cls:pump"
        );
        assert_eq!(compact("http://example.org/x"), "<http://example.org/x>");
    }
}
