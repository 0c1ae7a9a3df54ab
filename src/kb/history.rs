//! The version log: every commit — a load, a curation edit, a curator's SPARQL update — is one
//! PROV activity in the system graph `graph:history`, written in the same transaction as the
//! change it records, so a change never exists without its record:
//!
//! ```turtle
//! <https://w3id.org/assetkg/kb/version/3> a akg:KbVersion , prov:Activity ;
//!     akg:sequence 3 ; akg:versionId "sha256:…" ;
//!     akg:previousVersion <https://w3id.org/assetkg/kb/version/2> ;
//!     prov:startedAtTime "…"^^xsd:dateTime ; prov:wasAssociatedWith src:user/alice ;
//!     akg:action "vet" ; rdfs:comment "why" ;
//!     akg:addedQuads "N-Quads" ; akg:removedQuads "N-Quads" ;
//!     akg:addedCount 1 ; akg:removedCount 1 ;
//!     prov:generated graph:curation/000003-20261204T101500Z .
//! src:user/alice skos:prefLabel "alice"@en .
//! ```
//!
//! The change sets are net (quads added were not there, quads removed were), so composing them
//! gives the difference between any two versions ([`KnowledgeBase::diff`]). The log holds no
//! facts: it is left out of the default graph, SHACL validation, the asserted facts and the
//! version id. The counts are stored beside the N-Quads so that listing versions does not read
//! the change sets (a load of the whole bundled KB records its ~30,000 quads, several MB of
//! N-Quads).
//!
//! Costs on the bundled KB (29,947 asserted quads; the dev profile, opt-level 1; 2 cores;
//! `curation_costs` in the integration tests measures them): one curation edit end to end is
//! about 0.9 s — SHACL validation of the whole candidate state 0.3 s, RDFS materialisation
//! 0.2 s, the version hash 0.17 s, the write (default and inferred graph diffs, record,
//! transaction) 0.13 s. A SPARQL update costs about 0.7 s more (copying the store into the
//! scratch store it runs on, and diffing the two); a load of the whole bundled KB about 1.5 s.

use super::commit::{CommitInfo, Head, Prepared};
use super::error::{KbError, KbResult};
use super::KnowledgeBase;
use crate::vocab::{akg, prov, skos, HISTORY_GRAPH, VERSION};
use chrono::{DateTime, SecondsFormat, Utc};
use oxigraph::io::{RdfFormat, RdfParser, RdfSerializer};
use oxigraph::model::vocab::{rdf, rdfs, xsd};
use oxigraph::model::{
    GraphNameRef, Literal, NamedNode, NamedNodeRef, NamedOrBlankNode, Quad, Term,
};
use serde::Serialize;
use std::collections::HashSet;

/// One commit of the version log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRecord {
    /// Its sequence number: 1 for the first commit, one more for each commit after it.
    pub seq: u64,
    /// The IRI of the commit (a `prov:Activity`).
    pub iri: String,
    /// The version id of the KB after the commit (`sha256:…`, see [`KnowledgeBase::kb_version`]).
    pub id: String,
    /// The version id before the commit; `None` for the first record.
    pub previous: Option<String>,
    /// When it was made (`xsd:dateTime`).
    pub time: String,
    /// The IRI of who made it (a source: a user, a token, or the loader).
    pub agent: String,
    /// The agent's label.
    pub agent_label: String,
    /// `load`, `add-entity`, `propose`, `assert`, `retract`, `vet`, `reject` or `update`.
    pub action: String,
    /// Why (the files of a load, or the curator's reason).
    pub reason: String,
    /// Number of asserted quads it added.
    pub added: usize,
    /// Number of asserted quads it removed.
    pub removed: usize,
    /// The curation fact graph it wrote, if any.
    pub graph: Option<String>,
}

/// The net difference of the asserted quads between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionDiff {
    /// The version id diffed from.
    pub from: String,
    /// The version id diffed to.
    pub to: String,
    /// The sequence number of `from`.
    pub from_seq: u64,
    /// The sequence number of `to`.
    pub to_seq: u64,
    /// Quads in `to` but not in `from`, as sorted N-Quads statements without the final ` .`.
    pub added: Vec<String>,
    /// Quads in `from` but not in `to`, in the same form.
    pub removed: Vec<String>,
}

impl VersionDiff {
    /// The diff as an RDF Patch (<https://afs.github.io/rdf-patch/>): `H id` and `H prev`
    /// headers naming the two versions, then one transaction of `D` (delete) lines followed by
    /// `A` (add) lines, each an N-Quads statement.
    pub fn to_rdf_patch(&self) -> String {
        let mut out = format!(
            "H id {} .\nH prev {} .\nTX .\n",
            Literal::new_simple_literal(&self.to),
            Literal::new_simple_literal(&self.from)
        );
        for quad in &self.removed {
            out.push_str(&format!("D {quad} .\n"));
        }
        for quad in &self.added {
            out.push_str(&format!("A {quad} .\n"));
        }
        out.push_str("TC .\n");
        out
    }
}

/// The IRI of commit number `seq`.
pub(crate) fn version_iri(seq: u64) -> NamedNode {
    NamedNode::new_unchecked(format!("{VERSION}{seq}"))
}

/// The record of commit `seq` and the quads that store it in the version log.
pub(crate) fn record(
    seq: u64,
    id: &str,
    previous: &str,
    info: &CommitInfo,
    prepared: &Prepared,
) -> KbResult<(VersionRecord, Vec<Quad>)> {
    let v = version_iri(seq);
    let g = HISTORY_GRAPH;
    let time = date_time(info.time);
    let mut quads = vec![
        Quad::new(v.clone(), rdf::TYPE, akg::KB_VERSION, g),
        Quad::new(v.clone(), rdf::TYPE, prov::ACTIVITY, g),
        Quad::new(v.clone(), akg::SEQUENCE, Literal::from(seq), g),
        Quad::new(
            v.clone(),
            akg::VERSION_ID,
            Literal::new_simple_literal(id),
            g,
        ),
        Quad::new(v.clone(), prov::STARTED_AT_TIME, time.clone(), g),
        Quad::new(
            v.clone(),
            prov::WAS_ASSOCIATED_WITH,
            info.agent.iri.clone(),
            g,
        ),
        Quad::new(
            info.agent.iri.clone(),
            skos::PREF_LABEL,
            info.agent.label.clone(),
            g,
        ),
        Quad::new(
            v.clone(),
            akg::ACTION,
            Literal::new_simple_literal(info.action.as_str()),
            g,
        ),
        Quad::new(
            v.clone(),
            akg::ADDED_QUADS,
            Literal::new_simple_literal(nquads(&prepared.added)?),
            g,
        ),
        Quad::new(
            v.clone(),
            akg::REMOVED_QUADS,
            Literal::new_simple_literal(nquads(&prepared.removed)?),
            g,
        ),
        Quad::new(
            v.clone(),
            akg::ADDED_COUNT,
            Literal::from(prepared.added.len() as u64),
            g,
        ),
        Quad::new(
            v.clone(),
            akg::REMOVED_COUNT,
            Literal::from(prepared.removed.len() as u64),
            g,
        ),
    ];
    if seq > 1 {
        quads.push(Quad::new(
            v.clone(),
            akg::PREVIOUS_VERSION,
            version_iri(seq - 1),
            g,
        ));
    }
    if !info.reason.is_empty() {
        quads.push(Quad::new(
            v.clone(),
            rdfs::COMMENT,
            Literal::new_simple_literal(&info.reason),
            g,
        ));
    }
    if let Some(graph) = &info.graph {
        quads.push(Quad::new(v.clone(), prov::GENERATED, graph.clone(), g));
    }
    let record = VersionRecord {
        seq,
        iri: v.as_str().to_owned(),
        id: id.to_owned(),
        previous: (seq > 1).then(|| previous.to_owned()),
        time: time.value().to_owned(),
        agent: info.agent.iri.as_str().to_owned(),
        agent_label: info.agent.label.value().to_owned(),
        action: info.action.as_str().to_owned(),
        reason: info.reason.clone(),
        added: prepared.added.len(),
        removed: prepared.removed.len(),
        graph: info.graph.as_ref().map(|g| g.as_str().to_owned()),
    };
    Ok((record, quads))
}

/// An `xsd:dateTime` in its canonical form (fractional seconds without trailing zeros), the
/// form the store keeps, so that the candidate quads hash like the stored ones.
pub(crate) fn date_time(t: DateTime<Utc>) -> Literal {
    let millis = t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let canonical = match millis.strip_suffix('Z').and_then(|s| s.split_once('.')) {
        Some((seconds, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{fraction}Z")
            }
        }
        None => millis,
    };
    Literal::new_typed_literal(canonical, xsd::DATE_TIME)
}

/// `quads` as sorted N-Quads text.
fn nquads(quads: &[Quad]) -> KbResult<String> {
    let ser = |e: std::io::Error| KbError::Serialize(format!("version log: {e}"));
    let mut sorted: Vec<&Quad> = quads.iter().collect();
    sorted.sort_by_cached_key(|q| q.to_string());
    let mut writer = RdfSerializer::from_format(RdfFormat::NQuads).for_writer(Vec::new());
    for quad in sorted {
        writer.serialize_quad(quad).map_err(ser)?;
    }
    String::from_utf8(writer.finish().map_err(ser)?)
        .map_err(|e| KbError::Serialize(format!("version log: {e}")))
}

impl KnowledgeBase {
    /// The last record of the version log (sequence 0 and no id when there is none).
    pub(crate) fn head(&self) -> KbResult<Head> {
        let last = self
            .records_by_sequence()?
            .into_iter()
            .max_by_key(|(seq, _)| *seq);
        Ok(match last {
            None => Head { seq: 0, id: None },
            Some((seq, subject)) => Head {
                seq,
                id: Some(
                    self.history_value(&subject, akg::VERSION_ID)?
                        .ok_or_else(|| KbError::History {
                            iri: subject.to_string(),
                            message: "no akg:versionId".to_owned(),
                        })?,
                ),
            },
        })
    }

    /// The subject of every record of the version log, with its sequence number.
    fn records_by_sequence(&self) -> KbResult<Vec<(u64, NamedOrBlankNode)>> {
        let mut records = Vec::new();
        for quad in self
            .store
            .quads(None, Some(akg::SEQUENCE), None, Some(HISTORY_GRAPH.into()))?
        {
            records.push((sequence_of(&quad)?, quad.subject));
        }
        Ok(records)
    }

    /// The version id of the KB now: the latest record's, or, for a store without a version
    /// log, computed from the asserted facts.
    pub fn current_version(&self) -> KbResult<String> {
        match self.head()?.id {
            Some(id) => Ok(id),
            None => self.kb_version(),
        }
    }

    /// Every record of the version log, oldest first.
    pub fn versions(&self) -> KbResult<Vec<VersionRecord>> {
        let mut subjects = self.records_by_sequence()?;
        subjects.sort_by_key(|(seq, _)| *seq);
        let mut records: Vec<VersionRecord> = Vec::with_capacity(subjects.len());
        for (seq, subject) in subjects {
            let previous = records.last().map(|r| r.id.clone());
            records.push(self.read_record(seq, &subject, previous)?);
        }
        Ok(records)
    }

    /// The net change of the asserted quads from version `from` to version `to` (either
    /// direction). Each is a version id (`sha256:…`, the latest record with it) or a sequence
    /// number.
    pub fn diff(&self, from: &str, to: &str) -> KbResult<VersionDiff> {
        let records = self.versions()?;
        let a = resolve(from, &records)?;
        let b = resolve(to, &records)?;
        let (lo, hi) = (a.seq.min(b.seq), a.seq.max(b.seq));
        let mut added: HashSet<Quad> = HashSet::new();
        let mut removed: HashSet<Quad> = HashSet::new();
        for record in records.iter().filter(|r| r.seq > lo && r.seq <= hi) {
            let v = NamedOrBlankNode::from(NamedNode::new_unchecked(&record.iri));
            // Each change set is net against the state before it, so a quad removed after it
            // was added (or added back after it was removed) cancels out.
            for quad in self.change_set(&v, akg::REMOVED_QUADS)? {
                if !added.remove(&quad) {
                    removed.insert(quad);
                }
            }
            for quad in self.change_set(&v, akg::ADDED_QUADS)? {
                if !removed.remove(&quad) {
                    added.insert(quad);
                }
            }
        }
        if a.seq > b.seq {
            std::mem::swap(&mut added, &mut removed);
        }
        let sorted = |quads: HashSet<Quad>| {
            let mut lines: Vec<String> = quads.iter().map(ToString::to_string).collect();
            lines.sort();
            lines
        };
        Ok(VersionDiff {
            from: a.id.clone(),
            to: b.id.clone(),
            from_seq: a.seq,
            to_seq: b.seq,
            added: sorted(added),
            removed: sorted(removed),
        })
    }

    fn read_record(
        &self,
        seq: u64,
        v: &NamedOrBlankNode,
        previous: Option<String>,
    ) -> KbResult<VersionRecord> {
        let required = |predicate: NamedNodeRef<'_>| -> KbResult<String> {
            self.history_value(v, predicate)?
                .ok_or_else(|| KbError::History {
                    iri: v.to_string(),
                    message: format!("no {}", crate::vocab::compact(predicate.as_str())),
                })
        };
        let count = |predicate: NamedNodeRef<'_>| -> KbResult<usize> {
            required(predicate)?.parse().map_err(|e| KbError::History {
                iri: v.to_string(),
                message: format!("{}: {e}", crate::vocab::compact(predicate.as_str())),
            })
        };
        let agent = required(prov::WAS_ASSOCIATED_WITH)?;
        let agent_node = NamedOrBlankNode::from(NamedNode::new_unchecked(&agent));
        Ok(VersionRecord {
            seq,
            iri: match v {
                NamedOrBlankNode::NamedNode(n) => n.as_str().to_owned(),
                NamedOrBlankNode::BlankNode(b) => b.to_string(),
            },
            id: required(akg::VERSION_ID)?,
            previous,
            time: required(prov::STARTED_AT_TIME)?,
            agent_label: self
                .history_value(&agent_node, skos::PREF_LABEL)?
                .unwrap_or_else(|| agent.clone()),
            agent,
            action: required(akg::ACTION)?,
            reason: self.history_value(v, rdfs::COMMENT)?.unwrap_or_default(),
            added: count(akg::ADDED_COUNT)?,
            removed: count(akg::REMOVED_COUNT)?,
            graph: self.history_value(v, prov::GENERATED)?,
        })
    }

    /// The value (IRI or literal text) of `predicate` for `subject` in the version log.
    fn history_value(
        &self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'_>,
    ) -> KbResult<Option<String>> {
        let graph: GraphNameRef<'_> = HISTORY_GRAPH.into();
        match self
            .store
            .quads(Some(subject.as_ref()), Some(predicate), None, Some(graph))?
            .into_iter()
            .next()
        {
            None => Ok(None),
            Some(quad) => Ok(Some(match quad.object {
                Term::NamedNode(n) => n.into_string(),
                Term::Literal(l) => l.value().to_owned(),
                other => other.to_string(),
            })),
        }
    }

    /// The quads a record lists under `predicate` (`akg:addedQuads` or `akg:removedQuads`).
    fn change_set(&self, v: &NamedOrBlankNode, predicate: NamedNodeRef<'_>) -> KbResult<Vec<Quad>> {
        let text = self.history_value(v, predicate)?.unwrap_or_default();
        RdfParser::from_format(RdfFormat::NQuads)
            .for_slice(text.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| KbError::History {
                iri: v.to_string(),
                message: format!(
                    "{} is not N-Quads: {e}",
                    crate::vocab::compact(predicate.as_str())
                ),
            })
    }
}

/// The sequence number an `akg:sequence` quad states.
fn sequence_of(quad: &Quad) -> KbResult<u64> {
    match &quad.object {
        Term::Literal(l) => l.value().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| KbError::History {
        iri: quad.subject.to_string(),
        message: format!("akg:sequence {} is not a number", quad.object),
    })
}

/// The record a version argument names: a `sha256:` id (the latest record with it) or a
/// sequence number.
fn resolve<'a>(version: &str, records: &'a [VersionRecord]) -> KbResult<&'a VersionRecord> {
    let version = version.trim();
    let found = if version.starts_with("sha256:") {
        records.iter().rev().find(|r| r.id == version)
    } else {
        version
            .parse::<u64>()
            .ok()
            .and_then(|seq| records.iter().find(|r| r.seq == seq))
    };
    found.ok_or_else(|| KbError::UnknownVersion(version.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_in_canonical_form() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        assert_eq!(
            date_time(t("2026-12-04T10:15:00.120Z")).value(),
            "2026-12-04T10:15:00.12Z"
        );
        assert_eq!(
            date_time(t("2026-12-04T10:15:00Z")).value(),
            "2026-12-04T10:15:00Z"
        );
    }

    #[test]
    fn an_rdf_patch_deletes_then_adds_in_one_transaction() {
        let diff = VersionDiff {
            from: "sha256:aa".to_owned(),
            to: "sha256:bb".to_owned(),
            from_seq: 1,
            to_seq: 2,
            added: vec!["<urn:s> <urn:p> \"new\" <urn:g>".to_owned()],
            removed: vec!["<urn:s> <urn:p> \"old\" <urn:g>".to_owned()],
        };
        assert_eq!(
            diff.to_rdf_patch(),
            "H id \"sha256:bb\" .\nH prev \"sha256:aa\" .\nTX .\n\
             D <urn:s> <urn:p> \"old\" <urn:g> .\nA <urn:s> <urn:p> \"new\" <urn:g> .\nTC .\n"
        );
    }

    #[test]
    fn versions_resolve_by_id_or_sequence() {
        let record = |seq: u64, id: &str| VersionRecord {
            seq,
            iri: version_iri(seq).into_string(),
            id: id.to_owned(),
            previous: None,
            time: String::new(),
            agent: String::new(),
            agent_label: String::new(),
            action: "load".to_owned(),
            reason: String::new(),
            added: 0,
            removed: 0,
            graph: None,
        };
        let records = [
            record(1, "sha256:a"),
            record(2, "sha256:b"),
            record(3, "sha256:a"),
        ];
        let seq = |v: &str| resolve(v, &records).map(|r| r.seq).ok();
        assert_eq!(seq("sha256:a"), Some(3), "the latest record with the id");
        assert_eq!(seq("2"), Some(2));
        assert_eq!(seq("4"), None);
        assert_eq!(seq("sha256:c"), None);
    }
}
