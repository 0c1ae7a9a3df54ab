//! The encoder as training runs it: the embedding layer and the lower `frozen` encoder layers
//! never change, so their output is computed once per distinct text and cached; each step runs
//! only the upper layers on the cached states. The queries and items are few and repeat (a few
//! thousand texts for hundreds of thousands of pair visits), which is what makes CPU training
//! practical.

use crate::embed::bert::{Bert, BertEncoder};
use candle_core::{Device, IndexOp, Tensor};
use std::collections::HashMap;

/// Texts per forward pass when filling the cache or embedding without gradients.
const CHUNK: usize = 32;

/// One text's states after the frozen layers: `len` tokens × hidden, row-major.
#[derive(Debug, Clone)]
struct Cached {
    states: Vec<f32>,
    len: usize,
}

/// The output of the frozen layers for every text seen so far.
#[derive(Debug)]
pub struct FrozenCache {
    frozen: usize,
    hidden: usize,
    texts: HashMap<String, Cached>,
}

impl FrozenCache {
    /// An empty cache of the output of the embeddings and the first `frozen` layers.
    pub fn new(frozen: usize, hidden: usize) -> Self {
        Self {
            frozen,
            hidden,
            texts: HashMap::new(),
        }
    }

    /// How many layers are frozen.
    pub fn frozen(&self) -> usize {
        self.frozen
    }

    /// How many texts are cached.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Runs the frozen layers of `encoder` over the texts not cached yet (shortest first, so
    /// batches carry little padding).
    pub fn fill(
        &mut self,
        encoder: &BertEncoder,
        texts: &[&str],
        progress: bool,
    ) -> crate::embed::EmbedResult<()> {
        let mut missing: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| !self.texts.contains_key(*t))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let lengths = encoder.token_counts(&missing)?;
        let mut order: Vec<usize> = (0..missing.len()).collect();
        order.sort_by_key(|&i| lengths[i]);
        let bar = crate::progress::bar(
            progress,
            missing.len() as u64,
            "{msg:24} {bar:40} {pos}/{len} ({eta} left)",
            "caching frozen layers",
        );
        let bert = encoder.bert();
        for chunk in order.chunks(CHUNK) {
            let batch: Vec<&str> = chunk.iter().map(|&i| missing[i]).collect();
            let (ids, mask) = encoder.tokenize(&batch)?;
            let states = bert
                .run_layers(
                    &bert.embed_tokens(&ids)?,
                    &Bert::mask_bias(&mask)?,
                    0..self.frozen,
                )?
                .detach();
            for (row, (&i, text)) in chunk.iter().zip(&batch).enumerate() {
                let len = lengths[i].max(1);
                let states = states
                    .i((row, ..len, ..))?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                self.texts
                    .insert((*text).to_owned(), Cached { states, len });
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// States [b, s, hidden] (padded with zeros to the longest) and mask [b, s] of `texts`,
    /// all of which must have been cached.
    pub fn batch(&self, texts: &[&str]) -> candle_core::Result<(Tensor, Tensor)> {
        let cached: Vec<&Cached> = texts
            .iter()
            .map(|t| {
                self.texts.get(*t).ok_or_else(|| {
                    candle_core::Error::Msg(format!("text not in the frozen-layer cache: {t:?}"))
                })
            })
            .collect::<candle_core::Result<_>>()?;
        let longest = cached.iter().map(|c| c.len).max().unwrap_or(1);
        let h = self.hidden;
        let mut states = vec![0f32; texts.len() * longest * h];
        let mut mask = vec![0u32; texts.len() * longest];
        for (row, c) in cached.iter().enumerate() {
            let start = row * longest * h;
            states[start..start + c.len * h].copy_from_slice(&c.states);
            mask[row * longest..row * longest + c.len].fill(1);
        }
        Ok((
            Tensor::from_vec(states, (texts.len(), longest, h), &Device::Cpu)?,
            Tensor::from_vec(mask, (texts.len(), longest), &Device::Cpu)?,
        ))
    }
}

/// Texts per forward pass of a training batch: the batch's texts are sorted by length and run
/// in groups of this many, each padded only to its own longest text (query lengths vary from
/// 15 to 128 tokens; one padded batch would spend about half its work on padding).
const GROUP: usize = 8;

/// Embeddings [n, hidden] of cached `texts` through the trainable upper layers of `bert`, with
/// the computation graph kept for the backward pass.
pub fn encode(bert: &Bert, cache: &FrozenCache, texts: &[&str]) -> candle_core::Result<Tensor> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| cache.texts.get(texts[i]).map_or(0, |c| c.len));
    let groups = order
        .chunks(GROUP)
        .map(|group| {
            let batch: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            encode_padded(bert, cache, &batch)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let sorted = Tensor::cat(&groups, 0)?;
    // Row i of the result is text i: invert the sort.
    let mut position = vec![0u32; texts.len()];
    for (row, &i) in order.iter().enumerate() {
        position[i] = row as u32;
    }
    sorted.index_select(&Tensor::new(position.as_slice(), &Device::Cpu)?, 0)
}

/// [`encode`] of one padded batch.
fn encode_padded(bert: &Bert, cache: &FrozenCache, texts: &[&str]) -> candle_core::Result<Tensor> {
    let (states, mask) = cache.batch(texts)?;
    let top = bert.run_layers(
        &states,
        &Bert::mask_bias(&mask)?,
        cache.frozen()..bert.num_layers(),
    )?;
    Bert::pool(&top, &mask)
}

/// Embeddings of cached `texts` without gradients, in chunks of similar length.
pub fn embed_all(
    bert: &Bert,
    cache: &FrozenCache,
    texts: &[&str],
) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| cache.texts.get(texts[i]).map_or(0, |c| c.len));
    let mut out = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(CHUNK * 2) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let vectors = encode_padded(bert, cache, &batch)?
            .detach()
            .to_vec2::<f32>()?;
        for (&i, v) in chunk.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}
