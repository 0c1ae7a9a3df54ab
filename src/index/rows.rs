//! The Arrow layout of the `entities` table, and the conversions between its record batches and
//! our types: documents plus vectors in, stored keys and search hits out.

use super::documents::EntityDoc;
use super::error::{IndexError, IndexResult};
use super::search::Hit;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::types::Float32Type;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, ListArray, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Name of the one table of the index.
pub const TABLE: &str = "entities";

/// Column names.
pub mod col {
    pub const IRI: &str = "iri";
    pub const KIND: &str = "kind";
    pub const LABEL: &str = "label";
    pub const TEXT: &str = "text";
    pub const ASSETS: &str = "assets";
    pub const VETTING_STATUS: &str = "vetting_status";
    pub const CONTENT_HASH: &str = "content_hash";
    pub const MODEL_ID: &str = "model_id";
    pub const VECTOR: &str = "vector";
    /// Cosine distance, added by a vector search.
    pub const DISTANCE: &str = "_distance";
    /// BM25 score, added by a full-text search.
    pub const SCORE: &str = "_score";
}

/// The columns a search reads back (everything but the vector and the bookkeeping).
pub const HIT_COLUMNS: &[&str] = &[
    col::IRI,
    col::KIND,
    col::LABEL,
    col::TEXT,
    col::ASSETS,
    col::VETTING_STATUS,
];

/// The schema of the table for vectors of `dim` dimensions.
pub fn schema(dim: usize) -> IndexResult<SchemaRef> {
    let dim = i32::try_from(dim).map_err(|_| IndexError::Arrow {
        table: TABLE.to_owned(),
        source: arrow_schema::ArrowError::InvalidArgumentError(format!(
            "vector dimension {dim} is too large"
        )),
    })?;
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    Ok(Arc::new(Schema::new(vec![
        utf8(col::IRI),
        utf8(col::KIND),
        utf8(col::LABEL),
        utf8(col::TEXT),
        Field::new(
            col::ASSETS,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        utf8(col::VETTING_STATUS),
        utf8(col::CONTENT_HASH),
        utf8(col::MODEL_ID),
        Field::new(
            col::VECTOR,
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dim),
            false,
        ),
    ])))
}

/// The vector dimension of a stored table's schema, if it has a vector column of floats.
pub fn vector_dim(schema: &Schema) -> Option<usize> {
    match schema.field_with_name(col::VECTOR).ok()?.data_type() {
        DataType::FixedSizeList(item, dim) if item.data_type() == &DataType::Float32 => {
            usize::try_from(*dim).ok()
        }
        _ => None,
    }
}

/// One record batch of `docs` with their `vectors` (same order, each of `dim` floats).
pub fn to_batch(
    docs: &[&EntityDoc],
    vectors: &[Vec<f32>],
    model_id: &str,
    dim: usize,
) -> IndexResult<RecordBatch> {
    let strings = |f: fn(&EntityDoc) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(docs.iter().map(|d| f(d))))
    };
    let mut assets = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    for doc in docs {
        for asset in &doc.assets {
            assets.values().append_value(asset);
        }
        assets.append(true);
    }
    let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
        vectors.iter().map(|v| Some(v.iter().copied().map(Some))),
        i32::try_from(dim).unwrap_or(i32::MAX),
    );
    let columns: Vec<ArrayRef> = vec![
        strings(|d| &d.iri),
        strings(|d| &d.kind),
        strings(|d| &d.label),
        strings(|d| &d.text),
        Arc::new(assets.finish()),
        strings(|d| &d.vetting_status),
        strings(|d| &d.content_hash),
        Arc::new(StringArray::from_iter_values(docs.iter().map(|_| model_id))),
        Arc::new(vectors),
    ];
    RecordBatch::try_new(schema(dim)?, columns).map_err(|source| IndexError::Arrow {
        table: TABLE.to_owned(),
        source,
    })
}

/// Reads columns of result batches, naming the column in every error.
pub struct Columns<'a> {
    batch: &'a RecordBatch,
    uri: &'a str,
}

impl<'a> Columns<'a> {
    /// Column reader of `batch` from the index at `uri`.
    pub fn new(batch: &'a RecordBatch, uri: &'a str) -> Self {
        Self { batch, uri }
    }

    fn error(&self, column: &str, message: impl Into<String>) -> IndexError {
        IndexError::Column {
            uri: self.uri.to_owned(),
            table: TABLE.to_owned(),
            column: column.to_owned(),
            message: message.into(),
        }
    }

    fn column<T: Array + 'static>(&self, name: &str, expected: &str) -> IndexResult<&'a T> {
        let array = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| self.error(name, "missing from the result"))?;
        array.as_any().downcast_ref::<T>().ok_or_else(|| {
            self.error(
                name,
                format!("expected {expected}, found {}", array.data_type()),
            )
        })
    }

    /// A non-null string column.
    pub fn strings(&self, name: &str) -> IndexResult<&'a StringArray> {
        self.column(name, "utf8")
    }

    /// A float column (distances, scores).
    pub fn floats(&self, name: &str) -> IndexResult<&'a Float32Array> {
        self.column(name, "float32")
    }

    /// A list-of-strings column.
    pub fn string_lists(&self, name: &str) -> IndexResult<Vec<Vec<String>>> {
        let lists: &ListArray = self.column(name, "list<utf8>")?;
        (0..lists.len())
            .map(|i| {
                let values = lists.value(i);
                let strings = values
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| self.error(name, "expected list items of type utf8"))?;
                Ok(strings.iter().flatten().map(str::to_owned).collect())
            })
            .collect()
    }

    /// The hits of a search result batch, scored from `score_column` by `score`.
    pub fn hits(&self, score_column: &str, score: impl Fn(f32) -> f32) -> IndexResult<Vec<Hit>> {
        let scores = self.floats(score_column)?;
        let mut hits = self.entries()?;
        for (i, hit) in hits.iter_mut().enumerate() {
            hit.score = score(scores.value(i));
        }
        Ok(hits)
    }

    /// The rows of a batch as hits with score 0 (the [`HIT_COLUMNS`] only).
    pub fn entries(&self) -> IndexResult<Vec<Hit>> {
        let iri = self.strings(col::IRI)?;
        let kind = self.strings(col::KIND)?;
        let label = self.strings(col::LABEL)?;
        let text = self.strings(col::TEXT)?;
        let status = self.strings(col::VETTING_STATUS)?;
        let assets = self.string_lists(col::ASSETS)?;
        Ok(assets
            .into_iter()
            .enumerate()
            .map(|(i, assets)| Hit {
                iri: iri.value(i).to_owned(),
                kind: kind.value(i).to_owned(),
                label: label.value(i).to_owned(),
                text: text.value(i).to_owned(),
                score: 0.0,
                assets,
                vetting_status: status.value(i).to_owned(),
            })
            .collect())
    }

    /// A vector column, as one row-major run of floats and the dimension.
    pub fn vectors(&self, name: &str) -> IndexResult<(Vec<f32>, usize)> {
        let lists: &FixedSizeListArray = self.column(name, "fixed_size_list<float32>")?;
        let dim = usize::try_from(lists.value_length())
            .map_err(|_| self.error(name, "negative vector dimension"))?;
        let mut floats = Vec::with_capacity(lists.len() * dim);
        for i in 0..lists.len() {
            let vector = lists.value(i);
            let values = vector
                .as_any()
                .downcast_ref::<Float32Array>()
                .ok_or_else(|| self.error(name, "expected float32 vector items"))?;
            if values.null_count() > 0 || values.len() != dim {
                return Err(self.error(name, format!("row {i}: a vector with a null item")));
            }
            floats.extend_from_slice(values.values());
        }
        Ok((floats, dim))
    }
}
