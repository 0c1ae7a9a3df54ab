//! Our own BERT encoder in candle, with mean pooling and L2 normalisation: the reference
//! implementation and, later, the model that fine-tuning trains.
//!
//! Why not `candle_transformers::models::bert`: its LayerNorm records no gradient (upstream
//! issues #2977, #3011), so training would run and change nothing. This encoder uses
//! `candle_nn::ops::layer_norm_slow`, built from differentiable tensor ops, and keeps its
//! weights in a [`VarMap`] whose names are the checkpoint's, so `VarMap::load`/`save` read and
//! write sentence-transformers safetensors directly.

use super::{EmbedError, EmbedResult, Embedder, ModelDir};
use crate::embed::BertConfig;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder, VarMap};

/// LayerNorm with a backward pass (see the module doc).
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn new(c: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            word: embedding(c.vocab_size, c.hidden_size, vb.pp("word_embeddings"))?,
            position: embedding(
                c.max_position_embeddings,
                c.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type: embedding(
                c.type_vocab_size,
                c.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            norm: LayerNorm::new(c.hidden_size, c.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> candle_core::Result<Tensor> {
        let seq_len = input_ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?.unsqueeze(0)?;
        let x = self
            .word
            .forward(input_ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(token_type_ids)?)?;
        self.norm.forward(&x)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

impl Layer {
    fn new(c: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let attention = vb.pp("attention");
        Ok(Self {
            query: linear(h, h, attention.pp("self").pp("query"))?,
            key: linear(h, h, attention.pp("self").pp("key"))?,
            value: linear(h, h, attention.pp("self").pp("value"))?,
            attention_out: linear(h, h, attention.pp("output").pp("dense"))?,
            attention_norm: LayerNorm::new(
                h,
                c.layer_norm_eps,
                attention.pp("output").pp("LayerNorm"),
            )?,
            intermediate: linear(h, i, vb.pp("intermediate").pp("dense"))?,
            output: linear(i, h, vb.pp("output").pp("dense"))?,
            output_norm: LayerNorm::new(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    /// `mask_bias` is 0 for real tokens and a large negative number for padding, [b, 1, 1, s].
    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, s, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores =
            (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(mask_bias)?;
        // Not `softmax_last_dim`: that fused kernel records no gradient, so queries and keys
        // would never learn.
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let attended = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        self.output_norm
            .forward(&(self.output.forward(&inner)? + attended)?)
    }
}

/// The BERT network: embeddings and encoder layers, without pooling.
#[derive(Debug, Clone)]
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Builds the network with variables named as in the checkpoint (`embeddings.…`,
    /// `encoder.layer.N.…`).
    pub fn new(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let embeddings = Embeddings::new(config, vb.pp("embeddings"))?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::new(config, vb.pp("encoder").pp("layer").pp(i)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { embeddings, layers })
    }

    /// Number of encoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The additive attention bias of a [b, s] mask (u32): 0 for real tokens, -10000 (the
    /// value BERT uses) for padding, shaped [b, 1, 1, s].
    pub fn mask_bias(attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        ((attention_mask.to_dtype(DType::F32)?.affine(1.0, -1.0)? * 10000.0)?)
            .unsqueeze(1)?
            .unsqueeze(1)
    }

    /// The embedding layer's output [b, s, hidden] for token ids [b, s].
    pub fn embed_tokens(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        self.embeddings.forward(input_ids, &input_ids.zeros_like()?)
    }

    /// Runs encoder layers `layers` over states [b, s, hidden]. Training runs the frozen lower
    /// layers once and caches their output, then only the upper ones per step.
    pub fn run_layers(
        &self,
        states: &Tensor,
        mask_bias: &Tensor,
        layers: std::ops::Range<usize>,
    ) -> candle_core::Result<Tensor> {
        let mut x = states.clone();
        for layer in &self.layers[layers] {
            x = layer.forward(&x, mask_bias)?;
        }
        Ok(x)
    }

    /// Token states [b, s, hidden] for token ids and attention mask [b, s] (u32).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let x = self.embed_tokens(input_ids)?;
        self.run_layers(&x, &Self::mask_bias(attention_mask)?, 0..self.layers.len())
    }

    /// Mean of the token states over real tokens, L2-normalised: [b, hidden].
    pub fn embed(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        Self::pool(&self.forward(input_ids, attention_mask)?, attention_mask)
    }

    /// Mean pooling of token states [b, s, hidden] over the real tokens of `attention_mask`
    /// [b, s], then L2 normalisation.
    pub fn pool(states: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = states.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)
    }
}

/// [`Embedder`] over [`Bert`] on the CPU.
pub struct BertEncoder {
    bert: Bert,
    varmap: VarMap,
    tokenizer: tokenizers::Tokenizer,
    model: ModelDir,
    model_id: String,
    device: Device,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

impl BertEncoder {
    /// Loads the weights of `model` into trainable variables.
    pub fn load(model: &ModelDir) -> EmbedResult<Self> {
        let device = Device::Cpu;
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let bert = Bert::new(&model.config, vb)?;
        varmap
            .load(model.weights())
            .map_err(|e| EmbedError::BadModel {
                path: model.weights(),
                message: e.to_string(),
            })?;
        Ok(Self {
            bert,
            varmap,
            tokenizer: model.load_tokenizer()?,
            model_id: model.model_id()?,
            model: model.clone(),
            device,
        })
    }

    /// The network, for training.
    pub fn bert(&self) -> &Bert {
        &self.bert
    }

    /// The variables (named as in the checkpoint), for training and saving.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The model directory the weights came from.
    pub fn model_dir(&self) -> &ModelDir {
        &self.model
    }

    /// Cuts inputs at `max_length` tokens instead of the model's maximum (training uses
    /// shorter inputs: attention cost grows with the square of the length).
    pub fn set_max_length(&mut self, max_length: usize) -> EmbedResult<()> {
        self.tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_length.min(self.model.max_seq_length),
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(())
    }

    /// The number of tokens of each text, after truncation.
    pub fn token_counts(&self, texts: &[&str]) -> EmbedResult<Vec<usize>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encodings.iter().map(|e| e.get_ids().len()).collect())
    }

    /// Token ids and attention mask [b, s] for `texts`, padded to the longest.
    pub fn tokenize(&self, texts: &[&str]) -> EmbedResult<(Tensor, Tensor)> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let longest = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut ids = Vec::with_capacity(texts.len() * longest);
        let mut mask = Vec::with_capacity(texts.len() * longest);
        for e in &encodings {
            let n = e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(0u32, longest - n));
            mask.extend(std::iter::repeat_n(1u32, n));
            mask.extend(std::iter::repeat_n(0u32, longest - n));
        }
        let shape = (texts.len(), longest);
        Ok((
            Tensor::from_vec(ids, shape, &self.device)?,
            Tensor::from_vec(mask, shape, &self.device)?,
        ))
    }
}

impl Embedder for BertEncoder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.model.config.hidden_size
    }

    fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Batches of 32: a batch is padded to its longest text, so one huge batch would
        // spend most of its time on padding.
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(32) {
            let (ids, mask) = self.tokenize(chunk)?;
            vectors.extend(self.bert.embed(&ids, &mask)?.to_vec2::<f32>()?);
        }
        Ok(vectors)
    }
}
