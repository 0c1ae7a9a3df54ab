//! Import of the FailureSensorIQ failure mode ↔ sensor relevance matrix (IBM Research, CC BY 4.0)
//! into `kb/failuresensoriq.ttl`.
//!
//! Every judged cell becomes a `akg:SensorRelevanceJudgment` node — relevant or not, since "not
//! relevant" is expert knowledge too — with the asset, failure mode(s), sensor(s), the raw names
//! as the source spelled them, its source and vetting status. Raw names are normalised through a
//! name table (`kb/mappings/failuresensoriq-names.csv`: split "a/ b" cells, fix misspellings);
//! the raw spelling stays as `skos:altLabel`, so lookups by the raw text still resolve.

use super::error::{KbError, KbResult};
use crate::vocab::{akg, dct, prov, skos, slug, PREFIXES, SOURCE};
use oxigraph::io::{RdfFormat, RdfSerializer};
use oxigraph::model::vocab::rdf;
use oxigraph::model::{Literal, NamedNode, NamedNodeRef, Term, Triple};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The IRI of the graph the matrix is imported into.
pub const MATRIX_GRAPH: &str = "https://w3id.org/assetkg/graph/failuresensoriq";
/// Credit line the licence asks for.
pub const CREDIT: &str = "FailureSensorIQ, IBM Research, CC BY 4.0";

/// What an import produced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImportReport {
    /// Matrix rows (judged cells) read.
    pub cells: usize,
    /// Cells judged relevant.
    pub relevant: usize,
    /// Cells judged not relevant.
    pub not_relevant: usize,
    /// Distinct assets.
    pub assets: usize,
    /// Distinct failure modes after normalisation.
    pub failure_modes: usize,
    /// Distinct sensors after normalisation.
    pub sensors: usize,
    /// Triples written.
    pub triples: usize,
}

/// One row of the matrix CSV.
#[derive(Debug, Clone)]
struct Cell {
    asset: String,
    failure_mode: String,
    sensor: String,
    relevant: bool,
}

/// Raw name → canonical names, per kind (`sensor` or `failure_mode`).
type NameTable = BTreeMap<(String, String), Vec<String>>;

/// Reads the matrix and the name table and returns the Turtle document of the import.
pub fn import(matrix_csv: &Path, names_csv: &Path) -> KbResult<(String, ImportReport)> {
    let matrix_bytes = std::fs::read(matrix_csv).map_err(|e| KbError::io(matrix_csv, e))?;
    let cells = read_cells(matrix_csv, &matrix_bytes)?;
    let names = read_names(names_csv)?;
    let sha = hex::encode(Sha256::digest(&matrix_bytes));
    build(&cells, &names, matrix_csv, names_csv, &sha)
}

/// Runs [`import`] and writes the result to `out` atomically (temporary file, then rename).
pub fn import_to_file(matrix_csv: &Path, names_csv: &Path, out: &Path) -> KbResult<ImportReport> {
    let (turtle, report) = import(matrix_csv, names_csv)?;
    let tmp = out.with_extension("ttl.tmp");
    std::fs::write(&tmp, turtle).map_err(|e| KbError::io(&tmp, e))?;
    std::fs::rename(&tmp, out).map_err(|e| KbError::io(out, e))?;
    Ok(report)
}

fn csv_error(path: &Path, line: u64, message: impl Into<String>) -> KbError {
    KbError::Matrix {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

fn read_records(
    path: &Path,
    bytes: &[u8],
    header: &[&str],
) -> KbResult<Vec<(u64, csv::StringRecord)>> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let found = reader
        .headers()
        .map_err(|e| csv_error(path, 1, e.to_string()))?
        .clone();
    if found.iter().collect::<Vec<_>>() != header {
        return Err(csv_error(
            path,
            1,
            format!(
                "expected header {}, found {}",
                header.join(","),
                found.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            csv_error(path, line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().any(|f| f.trim().is_empty()) {
            return Err(csv_error(path, line, "empty field"));
        }
        records.push((line, record));
    }
    Ok(records)
}

fn read_cells(path: &Path, bytes: &[u8]) -> KbResult<Vec<Cell>> {
    let mut seen = BTreeSet::new();
    let mut cells = Vec::new();
    for (line, r) in read_records(
        path,
        bytes,
        &["asset", "failure_mode", "sensor", "relevant"],
    )? {
        let relevant = match &r[3] {
            "1" => true,
            "0" => false,
            other => {
                return Err(csv_error(
                    path,
                    line,
                    format!("field relevant must be 0 or 1, found {other:?}"),
                ))
            }
        };
        let cell = Cell {
            asset: r[0].to_owned(),
            failure_mode: r[1].to_owned(),
            sensor: r[2].to_owned(),
            relevant,
        };
        if !seen.insert((
            cell.asset.clone(),
            cell.failure_mode.clone(),
            cell.sensor.clone(),
        )) {
            return Err(csv_error(
                path,
                line,
                format!(
                    "cell ({}, {}, {}) is judged twice",
                    cell.asset, cell.failure_mode, cell.sensor
                ),
            ));
        }
        cells.push(cell);
    }
    Ok(cells)
}

fn read_names(path: &Path) -> KbResult<NameTable> {
    let bytes = std::fs::read(path).map_err(|e| KbError::io(path, e))?;
    let mut table = NameTable::new();
    for (line, r) in read_records(path, &bytes, &["kind", "raw", "canonical"])? {
        if r[0] != *"sensor" && r[0] != *"failure_mode" {
            return Err(csv_error(
                path,
                line,
                format!("kind must be sensor or failure_mode, found {:?}", &r[0]),
            ));
        }
        table
            .entry((r[0].to_owned(), r[1].to_owned()))
            .or_default()
            .push(r[2].to_owned());
    }
    Ok(table)
}

fn canonical<'a>(
    names: &'a NameTable,
    names_csv: &Path,
    kind: &str,
    raw: &str,
) -> KbResult<&'a [String]> {
    names
        .get(&(kind.to_owned(), raw.to_owned()))
        .map(Vec::as_slice)
        .ok_or_else(|| {
            csv_error(
                names_csv,
                0,
                format!("{kind} {raw:?} of the matrix has no row in the name table"),
            )
        })
}

fn node(ns: &str, local: &str) -> NamedNode {
    NamedNode::new_unchecked(format!("https://w3id.org/assetkg/kb/{ns}/{local}"))
}

fn en(text: &str) -> Literal {
    Literal::new_language_tagged_literal_unchecked(text, "en")
}

/// Triples grouped per subject, so the Turtle output is grouped and deterministic.
#[derive(Default)]
struct Doc {
    blocks: BTreeMap<String, BTreeMap<(String, String), Triple>>,
}

impl Doc {
    fn add(&mut self, s: &NamedNode, p: NamedNodeRef<'_>, o: impl Into<Term>) {
        let t = Triple::new(s.clone(), p.into_owned(), o);
        // Types first, then the rest by predicate; a fact added twice is one triple.
        let predicate = if t.predicate == rdf::TYPE {
            String::new()
        } else {
            t.predicate.to_string()
        };
        self.blocks
            .entry(s.as_str().to_owned())
            .or_default()
            .insert((predicate, t.object.to_string()), t);
    }

    fn len(&self) -> usize {
        self.blocks.values().map(BTreeMap::len).sum()
    }
}

fn build(
    cells: &[Cell],
    names: &NameTable,
    matrix_csv: &Path,
    names_csv: &Path,
    sha: &str,
) -> KbResult<(String, ImportReport)> {
    let mut doc = Doc::default();
    let graph = NamedNode::new_unchecked(MATRIX_GRAPH);
    let source = NamedNode::new_unchecked(format!("{SOURCE}failuresensoriq"));
    let cc_by = NamedNode::new_unchecked("https://creativecommons.org/licenses/by/4.0/");

    doc.add(&graph, rdf::TYPE, akg::FACT_GRAPH);
    doc.add(
        &graph,
        dct::TITLE,
        en("FailureSensorIQ failure mode and sensor relevance matrix, imported"),
    );
    doc.add(&graph, prov::WAS_ATTRIBUTED_TO, source.clone());
    doc.add(&graph, akg::VETTING_STATUS, akg::VETTED);
    doc.add(&graph, dct::LICENSE, cc_by.clone());
    doc.add(
        &graph,
        dct::SOURCE,
        NamedNode::new_unchecked("https://github.com/IBM/FailureSensorIQ"),
    );
    doc.add(&graph, akg::SOURCE_SHA256, Literal::new_simple_literal(sha));
    doc.add(&source, rdf::TYPE, akg::SOURCE);
    doc.add(&source, rdf::TYPE, prov::ORGANIZATION);
    doc.add(
        &source,
        skos::PREF_LABEL,
        en("FailureSensorIQ, IBM Research"),
    );
    doc.add(&source, skos::DEFINITION, en("Expert-curated relevance matrix of failure modes and sensors for ten industrial assets, built by IBM Research from ISO standard documents."));
    doc.add(&source, dct::LICENSE, cc_by);
    doc.add(
        &source,
        dct::BIBLIOGRAPHIC_CITATION,
        Literal::new_simple_literal(CREDIT),
    );

    let mut fm_labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sensor_labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut judgment_ids: BTreeMap<String, &Cell> = BTreeMap::new();
    let (mut relevant, mut assets) = (0, BTreeSet::new());

    for cell in cells {
        let fms = canonical(names, names_csv, "failure_mode", &cell.failure_mode)?;
        let sensors = canonical(names, names_csv, "sensor", &cell.sensor)?;
        let asset = node("class", &slug(&cell.asset));
        assets.insert(cell.asset.clone());
        for c in fms {
            fm_labels
                .entry(c.clone())
                .or_default()
                .insert(cell.failure_mode.clone());
        }
        for c in sensors {
            sensor_labels
                .entry(c.clone())
                .or_default()
                .insert(cell.sensor.clone());
        }

        let id = format!(
            "{}--{}--{}",
            slug(&cell.asset),
            slug(&cell.failure_mode),
            slug(&cell.sensor)
        );
        if let Some(other) = judgment_ids.insert(id.clone(), cell) {
            return Err(csv_error(
                matrix_csv,
                0,
                format!(
                    "cells ({}, {}, {}) and ({}, {}, {}) get the same judgment id {id}",
                    other.asset,
                    other.failure_mode,
                    other.sensor,
                    cell.asset,
                    cell.failure_mode,
                    cell.sensor
                ),
            ));
        }
        let j = node("judgment", &id);
        doc.add(&j, rdf::TYPE, akg::SENSOR_RELEVANCE_JUDGMENT);
        doc.add(&j, akg::JUDGED_ASSET, asset.clone());
        for fm in fms {
            doc.add(
                &j,
                akg::JUDGED_FAILURE_MODE,
                node("failure-mode", &slug(fm)),
            );
            doc.add(
                &asset,
                akg::HAS_FAILURE_MODE,
                node("failure-mode", &slug(fm)),
            );
        }
        for s in sensors {
            doc.add(&j, akg::JUDGED_SENSOR, node("sensor", &slug(s)));
            doc.add(
                &asset,
                akg::HAS_MONITORED_PROPERTY,
                node("sensor", &slug(s)),
            );
        }
        doc.add(&j, akg::RELEVANT, Literal::from(cell.relevant));
        doc.add(&j, akg::VETTING_STATUS, akg::VETTED);
        doc.add(&j, prov::WAS_ATTRIBUTED_TO, source.clone());
        doc.add(
            &j,
            akg::SOURCE_ASSET_NAME,
            Literal::new_simple_literal(&cell.asset),
        );
        doc.add(
            &j,
            akg::SOURCE_FAILURE_MODE_NAME,
            Literal::new_simple_literal(&cell.failure_mode),
        );
        doc.add(
            &j,
            akg::SOURCE_SENSOR_NAME,
            Literal::new_simple_literal(&cell.sensor),
        );
        if cell.relevant {
            relevant += 1;
            for fm in fms {
                for s in sensors {
                    doc.add(
                        &node("failure-mode", &slug(fm)),
                        akg::DETECTABLE_BY,
                        node("sensor", &slug(s)),
                    );
                }
            }
        }
    }

    for (ns, class, labels) in [
        ("failure-mode", akg::FAILURE_MODE, &fm_labels),
        ("sensor", akg::SENSOR, &sensor_labels),
    ] {
        for (canonical, raws) in labels {
            let n = node(ns, &slug(canonical));
            doc.add(&n, rdf::TYPE, class);
            doc.add(&n, skos::PREF_LABEL, en(canonical));
            for raw in raws.iter().filter(|r| *r != canonical) {
                doc.add(&n, skos::ALT_LABEL, en(raw));
            }
        }
    }

    let report = ImportReport {
        cells: cells.len(),
        relevant,
        not_relevant: cells.len() - relevant,
        assets: assets.len(),
        failure_modes: fm_labels.len(),
        sensors: sensor_labels.len(),
        triples: doc.len(),
    };
    Ok((serialize(&doc, matrix_csv)?, report))
}

fn serialize(doc: &Doc, matrix_csv: &Path) -> KbResult<String> {
    let ser = |e: std::io::Error| KbError::Serialize(e.to_string());
    let mut out = format!(
        "# Generated by `assetkg import-matrix` from {} — do not edit by hand.\n\
         # Data: {CREDIT} (https://github.com/IBM/FailureSensorIQ).\n\n",
        matrix_csv
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
    .into_bytes();
    let mut serializer = RdfSerializer::from_format(RdfFormat::Turtle);
    for (prefix, iri) in PREFIXES {
        serializer = serializer
            .with_prefix(*prefix, *iri)
            .map_err(|e| KbError::Serialize(e.to_string()))?;
    }
    let mut writer = serializer.for_writer(&mut out);
    // The graph header first, then entities in IRI order.
    let header = doc.blocks.get(MATRIX_GRAPH).into_iter();
    let rest = doc
        .blocks
        .iter()
        .filter(|(s, _)| s.as_str() != MATRIX_GRAPH)
        .map(|(_, b)| b);
    for block in header.chain(rest) {
        for t in block.values() {
            writer.serialize_triple(t).map_err(ser)?;
        }
    }
    writer.finish().map_err(ser)?;
    let text = String::from_utf8(out).map_err(|e| KbError::Serialize(e.to_string()))?;
    Ok(sort_prefix_lines(&text))
}

/// The serializer writes its `@prefix` lines in hash order; sort them so that re-importing the
/// same matrix gives a byte-identical file.
fn sort_prefix_lines(turtle: &str) -> String {
    let lines: Vec<&str> = turtle.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("@prefix"))
        .unwrap_or(0);
    let end = start
        + lines[start..]
            .iter()
            .take_while(|l| l.starts_with("@prefix"))
            .count();
    let mut prefixes = lines[start..end].to_vec();
    prefixes.sort_unstable();
    let mut out: Vec<&str> = lines[..start].to_vec();
    out.extend(prefixes);
    out.push("");
    out.extend(&lines[end..]);
    out.join("\n") + "\n"
}
