//! BM25 over the texts of an in-memory view, tokenized exactly as LanceDB's full-text index
//! tokenizes them (the analyzer is built from the same [`FtsIndexBuilder`] parameters the
//! table's index is created with), and scored with Lance's constants and idf, so that the
//! view ranks documents as the table's own full-text search does.
//!
//! Own code rather than a search-engine crate: the corpus is a few thousand short texts already
//! in memory, the tokenizer must be Lance's, and filtering happens outside; an inverted list per
//! token and the BM25 sum are all that is needed.

use super::error::{IndexError, IndexResult};
use lance_tokenizer::TokenStream;
use lancedb::index::scalar::FtsIndexBuilder;
use std::collections::HashMap;

/// Term-frequency saturation (Lance's and Lucene's default).
const K1: f32 = 1.2;
/// Document-length normalisation (Lance's and Lucene's default).
const B: f32 = 0.75;

/// An inverted index of documents numbered 0..n.
pub struct Bm25 {
    tokenizer:
        Box<dyn lance_index::scalar::inverted::tokenizer::document_tokenizer::LanceTokenizer>,
    /// Per token: (document, term frequency), documents ascending.
    postings: HashMap<String, Vec<(u32, u32)>>,
    /// Tokens per document.
    lengths: Vec<u32>,
    average_length: f32,
}

impl Bm25 {
    /// Indexes `texts` (document i is `texts[i]`).
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> IndexResult<Self> {
        let mut tokenizer = FtsIndexBuilder::default()
            .build()
            .map_err(|e| IndexError::Request(format!("building the full-text analyzer: {e}")))?;
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lengths = Vec::new();
        for (doc, text) in texts.into_iter().enumerate() {
            let doc = u32::try_from(doc).unwrap_or(u32::MAX);
            let mut counts: HashMap<String, u32> = HashMap::new();
            let mut length = 0u32;
            tokenizer.token_stream_for_doc(text).process(&mut |token| {
                *counts.entry(token.text.clone()).or_default() += 1;
                length += 1;
            });
            for (token, count) in counts {
                postings.entry(token).or_default().push((doc, count));
            }
            lengths.push(length);
        }
        let average_length = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().map(|&l| l as f32).sum::<f32>() / lengths.len() as f32
        };
        Ok(Self {
            tokenizer,
            postings,
            lengths,
            average_length,
        })
    }

    /// The BM25 score of every document that contains a token of `query` (any token matches,
    /// as in Lance's default match query), for the documents `keep` accepts. Statistics are
    /// those of the whole corpus, as a filtered Lance search computes them.
    pub fn scores(&self, query: &str, keep: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
        let mut tokens: Vec<String> = Vec::new();
        self.tokenizer
            .box_clone()
            .token_stream_for_search(query)
            .process(&mut |token| tokens.push(token.text.clone()));
        tokens.sort();
        tokens.dedup();
        let n = self.lengths.len() as f32;
        let mut scores: HashMap<usize, f32> = HashMap::new();
        for token in &tokens {
            let Some(postings) = self.postings.get(token) else {
                continue;
            };
            let df = postings.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(doc, tf) in postings {
                let doc = doc as usize;
                if !keep(doc) {
                    continue;
                }
                let tf = tf as f32;
                let length = self.lengths[doc] as f32;
                let norm = K1 * (1.0 - B + B * length / self.average_length.max(f32::EPSILON));
                *scores.entry(doc).or_default() += idf * (K1 + 1.0) * tf / (tf + norm);
            }
        }
        scores.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drops_stop_words_and_ranks_by_bm25() {
        let bm25 =
            Bm25::new(["The bearing is worn", "Bearing bearings wear", "Seal leak"]).unwrap();
        let mut scores = bm25.scores("the bearings", |_| true);
        scores.sort_by(|a, b| b.1.total_cmp(&a.1));
        let docs: Vec<usize> = scores.iter().map(|(d, _)| *d).collect();
        // "bearings" stems to "bear" and matches both, the document that says it twice first;
        // "the" is a stop word and matches nothing.
        assert_eq!(docs, [1, 0]);
        assert!(bm25.scores("the", |_| true).is_empty());
        assert_eq!(bm25.scores("bearing", |d| d == 0).len(), 1);
    }
}
