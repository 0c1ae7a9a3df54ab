//! ONNX export of the BERT encoder of a sentence-transformers model directory.
//!
//! [`export`] reads `model.safetensors` and `config.json` and writes `model.onnx`: the encoder
//! only (embeddings and transformer layers), ending in `last_hidden_state`
//! `[batch, sequence, hidden]`. Pooling stays outside the graph because fastembed
//! (`Pooling::Mean`) mean-pools that output with the attention mask itself.
//!
//! The graph is built from the weights alone, never copied from a published ONNX file, so a
//! fine-tuned model is exported exactly like the base model. It uses opset 17 (the first with a
//! fused `LayerNormalization`), int64 inputs `input_ids`, `attention_mask` and `token_type_ids`
//! with dynamic `batch` and `sequence` dimensions, and float32 weights as initializers. Linear
//! weights are stored transposed (`[in, out]`) so that every dense layer is a plain `MatMul`.

use super::{BertConfig, EmbedError, EmbedResult, ModelDir};
use candle_core::{DType, Device, Tensor};
use candle_onnx::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The revision of the exported graph; bump it when the graph changes, so that
/// [`super::ensure_onnx`] replaces files written by an older exporter.
pub const REVISION: &str = "2";

/// Opset 17 is the first with `LayerNormalization` in the default domain.
const OPSET_VERSION: i64 = 17;
/// IR version 8 is the one that goes with opset 17 (ONNX 1.12); any ONNX Runtime since 1.12
/// reads it.
const IR_VERSION: i64 = 8;
/// Added to the attention scores of padding tokens. exp(-10000) is exactly 0 in float32, so
/// padding gets no attention weight, and the value stays far from float overflow.
const MASKED_SCORE: f32 = -10_000.0;

/// Graph input and output names: the ones fastembed feeds and the usual Hugging Face output.
const INPUT_IDS: &str = "input_ids";
const ATTENTION_MASK: &str = "attention_mask";
const TOKEN_TYPE_IDS: &str = "token_type_ids";
const LAST_HIDDEN_STATE: &str = "last_hidden_state";

/// Writes `out` (usually `model.onnx()`): the BERT encoder of `model` as an ONNX graph.
///
/// Inputs are `input_ids`, `attention_mask` and `token_type_ids` (int64 `[batch, sequence]`);
/// the only output is `last_hidden_state` (float32 `[batch, sequence, hidden]`), before any
/// pooling. Weights come from `model.weights()` (float32, float16 or bfloat16, with or without
/// a `bert.` prefix) and are stored as float32. The file is written next to `out` first and
/// then renamed, so a failed export never leaves a truncated `model.onnx` behind.
pub fn export(model: &ModelDir, out: &Path) -> EmbedResult<()> {
    export_with(model, out, Precision::Float32)
}

/// The arithmetic of the dense layers of an exported graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32 weights and products: the same numbers as the candle encoder.
    #[default]
    Float32,
    /// Dynamic int8 quantization of every dense layer, the scheme of ONNX Runtime's
    /// `quantize_dynamic`: weights stored as int8 with one scale per output column, activations
    /// quantized to uint8 per call (`DynamicQuantizeLinear`), integer products
    /// (`MatMulInteger`) rescaled to float. Embeddings, LayerNorm, attention scores and GELU
    /// stay float32. About four times smaller weights and faster on CPUs with int8 dot products,
    /// at a small, measured cost in agreement with float32 (see the embed tests).
    Int8,
}

/// [`export`] with the dense layers in `precision`.
pub fn export_with(model: &ModelDir, out: &Path, precision: Precision) -> EmbedResult<()> {
    let proto = build_model(model, precision)?;
    let bytes = proto.encode_to_vec();
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, &bytes)
        .map_err(|e| EmbedError::Export(format!("writing {}: {e}", partial.display())))?;
    std::fs::rename(&partial, out).map_err(|e| {
        EmbedError::Export(format!(
            "renaming {} to {}: {e}",
            partial.display(),
            out.display()
        ))
    })
}

/// The complete ONNX model of `model`'s encoder, not yet serialised.
fn build_model(model: &ModelDir, precision: Precision) -> EmbedResult<ModelProto> {
    let config = &model.config;
    check_config(config, &model.dir.join("config.json"))?;
    let weights = Weights::load(&model.weights())?;
    let mut graph = GraphBuilder::new(config, precision);

    let embedded = embeddings(&mut graph, &weights, config)?;
    let attention_bias = attention_bias(&mut graph);
    let mut hidden = embedded;
    for layer in 0..config.num_hidden_layers {
        hidden = encoder_layer(
            &mut graph,
            &weights,
            config,
            layer,
            &hidden,
            &attention_bias,
        )?;
    }
    // Identity gives the last layer's output the conventional name without special-casing the
    // last layer; ONNX Runtime removes it when it optimises the graph.
    graph.node("Identity", &[&hidden], LAST_HIDDEN_STATE, vec![]);

    let name = model
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET_VERSION,
        }],
        producer_name: "assetkg".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: format!("BERT encoder of {name}, exported from model.safetensors"),
        graph: Some(graph.finish(&name, config.hidden_size)),
        ..Default::default()
    })
}

/// Rejects configurations the graph cannot express, before any weight is read.
fn check_config(config: &BertConfig, path: &Path) -> EmbedResult<()> {
    let bad = |message: String| {
        Err(EmbedError::BadModel {
            path: path.to_owned(),
            message,
        })
    };
    if config.hidden_act != "gelu" {
        return bad(format!(
            "hidden_act {:?} is not supported (only gelu)",
            config.hidden_act
        ));
    }
    if config.num_attention_heads == 0
        || !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
    {
        return bad(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden_size, config.num_attention_heads
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/// The tensors of `model.safetensors`, looked up by their BERT name without prefix.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    /// `"bert."` for checkpoints saved from `BertForXxx` models, else empty.
    prefix: &'static str,
}

impl Weights {
    fn load(path: &Path) -> EmbedResult<Self> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            EmbedError::BadModel {
                path: path.to_owned(),
                message: e.to_string(),
            }
        })?;
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        Ok(Self {
            path: path.to_owned(),
            tensors,
            prefix,
        })
    }

    fn bad(&self, name: &str, message: impl std::fmt::Display) -> EmbedError {
        EmbedError::BadModel {
            path: self.path.clone(),
            message: format!("{}{name}: {message}", self.prefix),
        }
    }

    /// The tensor `name` as float32, checked to have shape `dims`.
    fn get(&self, name: &str, dims: &[usize]) -> EmbedResult<Tensor> {
        let tensor = self
            .tensors
            .get(&format!("{}{name}", self.prefix))
            .ok_or_else(|| self.bad(name, "missing"))?;
        if tensor.dims() != dims {
            return Err(self.bad(
                name,
                format!("shape {:?}, expected {dims:?}", tensor.dims()),
            ));
        }
        tensor.to_dtype(DType::F32).map_err(|e| self.bad(name, e))
    }

    /// The values of `name` (shape `dims`) in row-major order.
    fn values(&self, name: &str, dims: &[usize]) -> EmbedResult<Vec<f32>> {
        let tensor = self.get(name, dims)?;
        tensor
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(name, e))
    }

    /// The values of the `[out, in]` matrix `name`, transposed to `[in, out]` in row-major order
    /// so that `x @ W^T` becomes a `MatMul` without a `Transpose` node.
    fn transposed_values(
        &self,
        name: &str,
        out_features: usize,
        in_features: usize,
    ) -> EmbedResult<Vec<f32>> {
        let tensor = self.get(name, &[out_features, in_features])?;
        tensor
            .t()
            .and_then(|t| t.contiguous())
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(name, e))
    }
}

// ---------------------------------------------------------------------------------------------
// Graph builder: one helper per ONNX op kind
// ---------------------------------------------------------------------------------------------

/// Collects the nodes and initializers of the graph, in topological order (each node is added
/// after the nodes that produce its inputs, as ONNX requires).
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Constants used by many layers, stored once.
    consts: SharedConstants,
    /// How the dense layers compute.
    precision: Precision,
}

/// Names of the small constant initializers that several layers share.
struct SharedConstants {
    one: String,
    half: String,
    sqrt_2: String,
    sqrt_head_dim: String,
    split_heads_shape: String,
    merge_heads_shape: String,
}

impl GraphBuilder {
    fn new(config: &BertConfig, precision: Precision) -> Self {
        let head_dim = config.hidden_size / config.num_attention_heads;
        let mut graph = Self {
            nodes: Vec::new(),
            initializers: Vec::new(),
            precision,
            consts: SharedConstants {
                one: "const.one".to_owned(),
                half: "const.half".to_owned(),
                sqrt_2: "const.sqrt_2".to_owned(),
                sqrt_head_dim: "const.sqrt_head_dim".to_owned(),
                split_heads_shape: "const.split_heads_shape".to_owned(),
                merge_heads_shape: "const.merge_heads_shape".to_owned(),
            },
        };
        if precision == Precision::Int8 {
            // Symmetric weights: every column's zero point is 0.
            graph.initializer_raw("const.weight_zero_point", &[], DataType::Int8, vec![0]);
        }
        graph.scalar_f32("const.one", 1.0);
        graph.scalar_f32("const.half", 0.5);
        graph.scalar_f32("const.sqrt_2", std::f32::consts::SQRT_2);
        graph.scalar_f32("const.sqrt_head_dim", (head_dim as f32).sqrt());
        // Reshape's 0 copies that dimension from the input: batch and sequence stay dynamic.
        graph.initializer_i64(
            "const.split_heads_shape",
            &[4],
            &[0, 0, config.num_attention_heads as i64, head_dim as i64],
        );
        graph.initializer_i64(
            "const.merge_heads_shape",
            &[3],
            &[0, 0, config.hidden_size as i64],
        );
        graph
    }

    /// Adds a float32 initializer (little-endian raw data, the compact form) and returns its name.
    fn initializer_f32(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer_raw(name, dims, DataType::Float, raw_data)
    }

    /// Adds an initializer of any type from its little-endian bytes.
    fn initializer_raw(
        &mut self,
        name: &str,
        dims: &[usize],
        data_type: DataType,
        raw_data: Vec<u8>,
    ) -> String {
        self.initializers.push(TensorProto {
            name: name.to_owned(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        });
        name.to_owned()
    }

    fn initializer_i64(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer_raw(name, dims, DataType::Int64, raw_data)
    }

    /// A rank-0 float32 constant; it broadcasts against any tensor.
    fn scalar_f32(&mut self, name: &str, value: f32) -> String {
        self.initializer_f32(name, &[], &[value])
    }

    fn scalar_i64(&mut self, name: &str, value: i64) -> String {
        self.initializer_i64(name, &[], &[value])
    }

    /// Adds a node with one output, named `output` (the node takes the same name), and returns
    /// the output name.
    fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.to_owned()],
            name: output.to_owned(),
            op_type: op_type.to_owned(),
            attribute,
            ..Default::default()
        });
        output.to_owned()
    }

    /// Adds a node with several outputs, named `{name}.{suffix}`, and returns their names.
    fn node_with_outputs(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        name: &str,
        suffixes: &[&str],
    ) -> Vec<String> {
        let outputs: Vec<String> = suffixes.iter().map(|s| format!("{name}.{s}")).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.clone(),
            name: name.to_owned(),
            op_type: op_type.to_owned(),
            ..Default::default()
        });
        outputs
    }

    fn add(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("Add", &[a, b], output, vec![])
    }

    fn sub(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("Sub", &[a, b], output, vec![])
    }

    fn mul(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("Mul", &[a, b], output, vec![])
    }

    fn div(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("Div", &[a, b], output, vec![])
    }

    fn matmul(&mut self, a: &str, b: &str, output: &str) -> String {
        self.node("MatMul", &[a, b], output, vec![])
    }

    fn erf(&mut self, x: &str, output: &str) -> String {
        self.node("Erf", &[x], output, vec![])
    }

    /// Rows `indices` of `table` (axis 0): embedding lookup.
    fn gather(&mut self, table: &str, indices: &str, output: &str) -> String {
        self.node(
            "Gather",
            &[table, indices],
            output,
            vec![int_attr("axis", 0)],
        )
    }

    fn reshape(&mut self, x: &str, shape: &str, output: &str) -> String {
        self.node("Reshape", &[x, shape], output, vec![])
    }

    fn transpose(&mut self, x: &str, perm: &[i64], output: &str) -> String {
        self.node("Transpose", &[x], output, vec![ints_attr("perm", perm)])
    }

    fn softmax_last_axis(&mut self, x: &str, output: &str) -> String {
        self.node("Softmax", &[x], output, vec![int_attr("axis", -1)])
    }

    /// LayerNormalization over the last axis with scale `gamma` and shift `beta`.
    fn layer_norm(
        &mut self,
        x: &str,
        gamma: &str,
        beta: &str,
        epsilon: f64,
        output: &str,
    ) -> String {
        // The attribute is a float32; BERT's 1e-12 is representable, so nothing is lost.
        let attributes = vec![int_attr("axis", -1), float_attr("epsilon", epsilon as f32)];
        self.node("LayerNormalization", &[x, gamma, beta], output, attributes)
    }

    /// The graph with its inputs (int64 `[batch, sequence]`) and its one output.
    fn finish(self, name: &str, hidden_size: usize) -> GraphProto {
        let batch_sequence = [Dim::Param("batch"), Dim::Param("sequence")];
        GraphProto {
            name: format!("{name} encoder"),
            node: self.nodes,
            initializer: self.initializers,
            input: [INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS]
                .iter()
                .map(|input| tensor_value_info(input, DataType::Int64, &batch_sequence))
                .collect(),
            output: vec![tensor_value_info(
                LAST_HIDDEN_STATE,
                DataType::Float,
                &[
                    Dim::Param("batch"),
                    Dim::Param("sequence"),
                    Dim::Value(hidden_size),
                ],
            )],
            ..Default::default()
        }
    }
}

/// One dimension of a graph input or output: named (dynamic) or fixed.
enum Dim {
    Param(&'static str),
    Value(usize),
}

fn tensor_value_info(name: &str, elem_type: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Param(p) => dimension::Value::DimParam((*p).to_owned()),
                Dim::Value(v) => dimension::Value::DimValue(*v as i64),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn ints_attr(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn float_attr(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// BERT blocks
// ---------------------------------------------------------------------------------------------

/// Word + absolute position + token type embeddings, then LayerNorm: `[batch, sequence, hidden]`.
fn embeddings(
    graph: &mut GraphBuilder,
    weights: &Weights,
    config: &BertConfig,
) -> EmbedResult<String> {
    let hidden = config.hidden_size;
    let word_table = "embeddings.word_embeddings.weight";
    let position_table = "embeddings.position_embeddings.weight";
    let type_table = "embeddings.token_type_embeddings.weight";
    for (name, rows) in [
        (word_table, config.vocab_size),
        (position_table, config.max_position_embeddings),
        (type_table, config.type_vocab_size),
    ] {
        let values = weights.values(name, &[rows, hidden])?;
        graph.initializer_f32(name, &[rows, hidden], &values);
    }

    let words = graph.gather(word_table, INPUT_IDS, "embeddings.words");
    let types = graph.gather(type_table, TOKEN_TYPE_IDS, "embeddings.token_types");
    // Positions 0..sequence, computed from the input's shape so that the sequence length stays
    // dynamic. The [sequence, hidden] rows broadcast over the batch.
    let shape = graph.node("Shape", &[INPUT_IDS], "embeddings.input_shape", vec![]);
    let sequence_axis = graph.scalar_i64("const.sequence_axis", 1);
    let length = graph.gather(&shape, &sequence_axis, "embeddings.sequence_length");
    let zero = graph.scalar_i64("const.position_start", 0);
    let step = graph.scalar_i64("const.position_step", 1);
    let position_ids = graph.node(
        "Range",
        &[&zero, &length, &step],
        "embeddings.position_ids",
        vec![],
    );
    let positions = graph.gather(position_table, &position_ids, "embeddings.positions");

    let sum = graph.add(&words, &positions, "embeddings.words_positions");
    let sum = graph.add(&sum, &types, "embeddings.sum");
    layer_norm(
        graph,
        weights,
        hidden,
        config.layer_norm_eps,
        "embeddings.LayerNorm",
        &sum,
    )
}

/// LayerNorm with the `{prefix}.weight` and `{prefix}.bias` parameters.
fn layer_norm(
    graph: &mut GraphBuilder,
    weights: &Weights,
    hidden: usize,
    epsilon: f64,
    prefix: &str,
    x: &str,
) -> EmbedResult<String> {
    let gamma = format!("{prefix}.weight");
    let beta = format!("{prefix}.bias");
    let gamma_values = weights.values(&gamma, &[hidden])?;
    let beta_values = weights.values(&beta, &[hidden])?;
    graph.initializer_f32(&gamma, &[hidden], &gamma_values);
    graph.initializer_f32(&beta, &[hidden], &beta_values);
    Ok(graph.layer_norm(x, &gamma, &beta, epsilon, prefix))
}

/// Dense layer `x @ W^T + b` of the `{prefix}.weight` (`[out, in]`) and `{prefix}.bias`
/// parameters; the weight is stored already transposed.
fn linear(
    graph: &mut GraphBuilder,
    weights: &Weights,
    prefix: &str,
    in_features: usize,
    out_features: usize,
    x: &str,
) -> EmbedResult<String> {
    let weight = format!("{prefix}.weight");
    let weight_t = format!("{prefix}.weight_transposed");
    let bias = format!("{prefix}.bias");
    let weight_values = weights.transposed_values(&weight, out_features, in_features)?;
    let bias_values = weights.values(&bias, &[out_features])?;
    graph.initializer_f32(&bias, &[out_features], &bias_values);
    let product = match graph.precision {
        Precision::Float32 => {
            graph.initializer_f32(&weight_t, &[in_features, out_features], &weight_values);
            graph.matmul(x, &weight_t, &format!("{prefix}.matmul"))
        }
        Precision::Int8 => {
            quantized_matmul(graph, prefix, x, &weight_values, in_features, out_features)
        }
    };
    Ok(graph.add(&product, &bias, prefix))
}

/// `x · W` with `W` (`[in, out]`, row-major) quantized to int8 per output column and `x`
/// quantized to uint8 per call, in the node pattern ONNX Runtime fuses into one
/// `MatMulIntegerToFloat`.
fn quantized_matmul(
    graph: &mut GraphBuilder,
    prefix: &str,
    x: &str,
    weight: &[f32],
    in_features: usize,
    out_features: usize,
) -> String {
    let (quantized, scales) = quantize_columns(weight, in_features, out_features);
    let weight_q = graph.initializer_raw(
        &format!("{prefix}.weight_quantized"),
        &[in_features, out_features],
        DataType::Int8,
        quantized.iter().map(|&q| q as u8).collect(),
    );
    let weight_scale =
        graph.initializer_f32(&format!("{prefix}.weight_scale"), &[out_features], &scales);
    let weight_zero = "const.weight_zero_point".to_owned();
    let quantized_x = graph.node_with_outputs(
        "DynamicQuantizeLinear",
        &[x],
        &format!("{prefix}.input_quantized"),
        &["values", "scale", "zero_point"],
    );
    let product = graph.node(
        "MatMulInteger",
        &[&quantized_x[0], &weight_q, &quantized_x[2], &weight_zero],
        &format!("{prefix}.matmul_integer"),
        vec![],
    );
    let product = graph.node(
        "Cast",
        &[&product],
        &format!("{prefix}.matmul_integer.float"),
        vec![int_attr("to", DataType::Float as i64)],
    );
    let scale = graph.mul(
        &quantized_x[1],
        &weight_scale,
        &format!("{prefix}.product_scale"),
    );
    graph.mul(&product, &scale, &format!("{prefix}.matmul"))
}

/// Symmetric int8 quantization of each column of a row-major `[rows, cols]` matrix: values in
/// −127…127 and one scale per column (`max |w| / 127`; 1 for an all-zero column).
fn quantize_columns(values: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut scales = vec![0f32; cols];
    for row in values.chunks(cols).take(rows) {
        for (scale, v) in scales.iter_mut().zip(row) {
            *scale = scale.max(v.abs());
        }
    }
    for scale in &mut scales {
        *scale = if *scale > 0.0 { *scale / 127.0 } else { 1.0 };
    }
    let quantized = values
        .chunks(cols)
        .take(rows)
        .flat_map(|row| {
            row.iter()
                .zip(&scales)
                .map(|(v, scale)| (v / scale).round().clamp(-127.0, 127.0) as i8)
        })
        .collect();
    (quantized, scales)
}

/// The attention mask as an additive bias on the attention scores: 0 for real tokens,
/// [`MASKED_SCORE`] for padding, shaped `[batch, 1, 1, sequence]` to broadcast over heads and
/// query positions.
fn attention_bias(graph: &mut GraphBuilder) -> String {
    let mask = graph.node(
        "Cast",
        &[ATTENTION_MASK],
        "attention_bias.mask_float",
        vec![int_attr("to", DataType::Float as i64)],
    );
    let one = graph.consts.one.clone();
    let padding = graph.sub(&one, &mask, "attention_bias.padding");
    let masked_score = graph.scalar_f32("const.masked_score", MASKED_SCORE);
    let bias = graph.mul(&padding, &masked_score, "attention_bias.flat");
    // [b, s] -> [b, 1, s] -> [b, 1, 1, s]. Unsqueeze takes its axes as an input since opset 13.
    // One axis per node: candle-onnx (the second evaluator of the tests) inserts several axes
    // of one Unsqueeze in the wrong order, giving [b, 1, s, 1].
    let axis = graph.initializer_i64("const.attention_bias_axis", &[1], &[1]);
    let bias = graph.node(
        "Unsqueeze",
        &[&bias, &axis],
        "attention_bias.per_query",
        vec![],
    );
    graph.node("Unsqueeze", &[&bias, &axis], "attention_bias", vec![])
}

/// One post-LayerNorm transformer block: self-attention and feed-forward, each followed by a
/// residual Add and LayerNorm.
fn encoder_layer(
    graph: &mut GraphBuilder,
    weights: &Weights,
    config: &BertConfig,
    layer: usize,
    x: &str,
    attention_bias: &str,
) -> EmbedResult<String> {
    let prefix = format!("encoder.layer.{layer}");
    let hidden = config.hidden_size;
    let eps = config.layer_norm_eps;

    let attended = self_attention(graph, weights, hidden, &prefix, x, attention_bias)?;
    let residual = graph.add(x, &attended, &format!("{prefix}.attention.residual"));
    let x = layer_norm(
        graph,
        weights,
        hidden,
        eps,
        &format!("{prefix}.attention.output.LayerNorm"),
        &residual,
    )?;

    let fed = feed_forward(graph, weights, config, &prefix, &x)?;
    let residual = graph.add(&x, &fed, &format!("{prefix}.output.residual"));
    layer_norm(
        graph,
        weights,
        hidden,
        eps,
        &format!("{prefix}.output.LayerNorm"),
        &residual,
    )
}

/// Multi-head self-attention, including its output projection (before the residual).
fn self_attention(
    graph: &mut GraphBuilder,
    weights: &Weights,
    hidden: usize,
    prefix: &str,
    x: &str,
    attention_bias: &str,
) -> EmbedResult<String> {
    let split_shape = graph.consts.split_heads_shape.clone();
    let merge_shape = graph.consts.merge_heads_shape.clone();
    let sqrt_head_dim = graph.consts.sqrt_head_dim.clone();
    let p = format!("{prefix}.attention.self");

    // [batch, seq, hidden] -> [batch, seq, heads, head_dim] -> `perm`.
    let project = |graph: &mut GraphBuilder, which: &str, perm: &[i64]| -> EmbedResult<String> {
        let projected = linear(graph, weights, &format!("{p}.{which}"), hidden, hidden, x)?;
        let split = graph.reshape(
            &projected,
            &split_shape,
            &format!("{p}.{which}.split_heads"),
        );
        Ok(graph.transpose(&split, perm, &format!("{p}.{which}.heads")))
    };
    // Queries and values as [batch, heads, seq, head_dim]; keys straight to
    // [batch, heads, head_dim, seq] so that the scores need no further transpose.
    let query = project(graph, "query", &[0, 2, 1, 3])?;
    let key = project(graph, "key", &[0, 2, 3, 1])?;
    let value = project(graph, "value", &[0, 2, 1, 3])?;

    let scores = graph.matmul(&query, &key, &format!("{p}.scores"));
    let scaled = graph.div(&scores, &sqrt_head_dim, &format!("{p}.scaled_scores"));
    let masked = graph.add(&scaled, attention_bias, &format!("{p}.masked_scores"));
    let probs = graph.softmax_last_axis(&masked, &format!("{p}.probs"));
    let context = graph.matmul(&probs, &value, &format!("{p}.context"));
    // [batch, heads, seq, head_dim] -> [batch, seq, heads, head_dim] -> [batch, seq, hidden].
    let context = graph.transpose(&context, &[0, 2, 1, 3], &format!("{p}.context.seq_major"));
    let context = graph.reshape(&context, &merge_shape, &format!("{p}.context.merged"));
    linear(
        graph,
        weights,
        &format!("{prefix}.attention.output.dense"),
        hidden,
        hidden,
        &context,
    )
}

/// The feed-forward block: dense to the intermediate size, GELU, dense back (before the
/// residual).
fn feed_forward(
    graph: &mut GraphBuilder,
    weights: &Weights,
    config: &BertConfig,
    prefix: &str,
    x: &str,
) -> EmbedResult<String> {
    let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
    let up = linear(
        graph,
        weights,
        &format!("{prefix}.intermediate.dense"),
        hidden,
        intermediate,
        x,
    )?;
    let activated = gelu(graph, &up, &format!("{prefix}.intermediate.gelu"));
    linear(
        graph,
        weights,
        &format!("{prefix}.output.dense"),
        intermediate,
        hidden,
        &activated,
    )
}

/// GELU in the exact erf form `0.5 * x * (1 + erf(x / sqrt(2)))`, which is what BERT's
/// `hidden_act: "gelu"` means (not the tanh approximation).
fn gelu(graph: &mut GraphBuilder, x: &str, prefix: &str) -> String {
    let (one, half, sqrt_2) = (
        graph.consts.one.clone(),
        graph.consts.half.clone(),
        graph.consts.sqrt_2.clone(),
    );
    let scaled = graph.div(x, &sqrt_2, &format!("{prefix}.scaled"));
    let erf = graph.erf(&scaled, &format!("{prefix}.erf"));
    let gate = graph.add(&erf, &one, &format!("{prefix}.gate"));
    let gated = graph.mul(x, &gate, &format!("{prefix}.gated"));
    graph.mul(&gated, &half, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "models/all-MiniLM-L6-v2";
    const FIXTURE: &str = "tests/fixtures/minilm-reference.json";

    /// candle-onnx 0.9's `simple_eval` has no `LayerNormalization`; for evaluating the graph in
    /// tests, each one is rewritten into the ops it stands for (ReduceMean, Sub, Mul, Add, Sqrt,
    /// Div). Only the test's copy of the graph changes; the exported file keeps the fused op.
    fn decompose_layer_norms(model: &mut ModelProto) {
        let Some(graph) = model.graph.as_mut() else {
            return;
        };
        let mut nodes = Vec::with_capacity(graph.node.len());
        let mut extra_initializers = Vec::new();
        let reduce_mean = |input: &str, output: String| NodeProto {
            input: vec![input.to_owned()],
            output: vec![output.clone()],
            name: output,
            op_type: "ReduceMean".to_owned(),
            attribute: vec![ints_attr("axes", &[-1]), int_attr("keepdims", 1)],
            ..Default::default()
        };
        let binary = |op: &str, a: &str, b: &str, output: String| NodeProto {
            input: vec![a.to_owned(), b.to_owned()],
            output: vec![output.clone()],
            name: output,
            op_type: op.to_owned(),
            ..Default::default()
        };
        for node in graph.node.drain(..) {
            if node.op_type != "LayerNormalization" {
                nodes.push(node);
                continue;
            }
            let (x, gamma, beta, y) = (
                &node.input[0],
                &node.input[1],
                &node.input[2],
                &node.output[0],
            );
            let epsilon = node
                .attribute
                .iter()
                .find(|a| a.name == "epsilon")
                .map_or(1e-5, |a| a.f);
            let eps = format!("{y}.test_eps");
            extra_initializers.push(TensorProto {
                name: eps.clone(),
                data_type: DataType::Float as i32,
                float_data: vec![epsilon],
                ..Default::default()
            });
            nodes.push(reduce_mean(x, format!("{y}.test_mean")));
            nodes.push(binary(
                "Sub",
                x,
                &format!("{y}.test_mean"),
                format!("{y}.test_centered"),
            ));
            nodes.push(binary(
                "Mul",
                &format!("{y}.test_centered"),
                &format!("{y}.test_centered"),
                format!("{y}.test_sq"),
            ));
            nodes.push(reduce_mean(
                &format!("{y}.test_sq"),
                format!("{y}.test_var"),
            ));
            nodes.push(binary(
                "Add",
                &format!("{y}.test_var"),
                &eps,
                format!("{y}.test_var_eps"),
            ));
            nodes.push(NodeProto {
                input: vec![format!("{y}.test_var_eps")],
                output: vec![format!("{y}.test_std")],
                op_type: "Sqrt".to_owned(),
                ..Default::default()
            });
            nodes.push(binary(
                "Div",
                &format!("{y}.test_centered"),
                &format!("{y}.test_std"),
                format!("{y}.test_norm"),
            ));
            nodes.push(binary(
                "Mul",
                &format!("{y}.test_norm"),
                gamma,
                format!("{y}.test_scaled"),
            ));
            nodes.push(binary("Add", &format!("{y}.test_scaled"), beta, y.clone()));
        }
        graph.node = nodes;
        graph.initializer.extend(extra_initializers);
    }

    /// Runs the graph on right-padded `sequences` and returns the mean-pooled (over unmasked
    /// tokens), L2-normalised sentence vectors.
    fn run_and_pool(model: &ModelProto, sequences: &[Vec<i64>]) -> Vec<Vec<f32>> {
        let batch = sequences.len();
        let seq = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![0i64; batch * seq];
        let mut mask = vec![0i64; batch * seq];
        for (row, tokens) in sequences.iter().enumerate() {
            for (col, &t) in tokens.iter().enumerate() {
                ids[row * seq + col] = t;
                mask[row * seq + col] = 1;
            }
        }
        let tensor = |v: Vec<i64>| Tensor::from_vec(v, (batch, seq), &Device::Cpu).unwrap();
        let inputs = HashMap::from([
            (INPUT_IDS.to_owned(), tensor(ids)),
            (ATTENTION_MASK.to_owned(), tensor(mask)),
            (TOKEN_TYPE_IDS.to_owned(), tensor(vec![0; batch * seq])),
        ]);
        let mut outputs = candle_onnx::simple_eval(model, inputs).unwrap();
        let hidden = outputs
            .remove(LAST_HIDDEN_STATE)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        sequences
            .iter()
            .zip(hidden)
            .map(|(tokens, states)| {
                let dim = states[0].len();
                let mut pooled = vec![0f32; dim];
                for state in &states[..tokens.len()] {
                    pooled
                        .iter_mut()
                        .zip(state)
                        .for_each(|(p, s)| *p += s / tokens.len() as f32);
                }
                super::super::l2_normalize(&mut pooled);
                pooled
            })
            .collect()
    }

    #[test]
    fn exported_minilm_matches_numpy_reference() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(MODEL);
        if !dir.join("model.safetensors").is_file() {
            eprintln!(
                "skipping: {} is absent (run scripts/fetch-models.sh)",
                dir.display()
            );
            return;
        }
        let model = ModelDir::open(&dir).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("model.onnx");
        export(&model, &out).unwrap();

        let mut proto = candle_onnx::read_file(&out).unwrap();
        let graph = proto.graph.as_ref().unwrap();
        let names = |v: &[ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&graph.input),
            [INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS]
        );
        assert_eq!(names(&graph.output), [LAST_HIDDEN_STATE]);
        decompose_layer_norms(&mut proto);

        let fixture: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap(),
        )
        .unwrap();
        // Three sentences of different lengths in one padded batch, so masking is checked too.
        let sentences: Vec<&serde_json::Value> = [0, 2, 5]
            .iter()
            .map(|&i| &fixture["sentences"][i])
            .collect();
        let ids: Vec<Vec<i64>> = sentences
            .iter()
            .map(|s| {
                s["token_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_i64().unwrap())
                    .collect()
            })
            .collect();
        let vectors = run_and_pool(&proto, &ids);
        for (sentence, vector) in sentences.iter().zip(&vectors) {
            let expected: Vec<f32> = sentence["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let cos = super::super::cosine(vector, &expected);
            assert!(cos >= 0.999, "{}: cosine {cos}", sentence["text"]);
        }
    }

    /// A tiny random BERT (2 layers, hidden 8, 2 heads) in a temp dir, `prefix` on every name.
    fn tiny_model(dir: &Path, prefix: &str) -> ModelDir {
        let config = BertConfig {
            vocab_size: 20,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 16,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".to_owned(),
        };
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            ("embeddings.word_embeddings.weight".into(), vec![20, 8]),
            ("embeddings.position_embeddings.weight".into(), vec![16, 8]),
            ("embeddings.token_type_embeddings.weight".into(), vec![2, 8]),
            ("embeddings.LayerNorm.weight".into(), vec![8]),
            ("embeddings.LayerNorm.bias".into(), vec![8]),
            ("pooler.dense.weight".into(), vec![8, 8]),
        ];
        for i in 0..2 {
            let p = format!("encoder.layer.{i}");
            for (name, dims) in [
                ("attention.self.query", vec![8, 8]),
                ("attention.self.key", vec![8, 8]),
                ("attention.self.value", vec![8, 8]),
                ("attention.output.dense", vec![8, 8]),
                ("intermediate.dense", vec![16, 8]),
                ("output.dense", vec![8, 16]),
            ] {
                shapes.push((format!("{p}.{name}.bias"), vec![dims[0]]));
                shapes.push((format!("{p}.{name}.weight"), dims));
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                shapes.push((format!("{p}.{ln}.weight"), vec![8]));
                shapes.push((format!("{p}.{ln}.bias"), vec![8]));
            }
        }
        let tensors: HashMap<String, Tensor> = shapes
            .into_iter()
            .map(|(name, dims)| {
                (
                    format!("{prefix}{name}"),
                    Tensor::randn(0f32, 0.5, dims, &Device::Cpu).unwrap(),
                )
            })
            .collect();
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
        ModelDir {
            dir: dir.to_owned(),
            config,
            max_seq_length: 16,
        }
    }

    #[test]
    fn tiny_model_has_the_expected_interface_and_runs() {
        for prefix in ["", "bert."] {
            let tmp = tempfile::tempdir().unwrap();
            let model = tiny_model(tmp.path(), prefix);
            export(&model, &model.onnx()).unwrap();
            let mut proto = candle_onnx::read_file(model.onnx()).unwrap();
            assert_eq!(proto.opset_import[0].version, OPSET_VERSION);
            let graph = proto.graph.as_ref().unwrap();
            assert_eq!(graph.output.len(), 1);
            assert_eq!(graph.output[0].name, LAST_HIDDEN_STATE);
            // 3 embedding tables + LayerNorm, 16 per layer, 11 small constants; no pooler.
            assert_eq!(graph.initializer.len(), 5 + 2 * 16 + 11);
            assert!(graph
                .initializer
                .iter()
                .all(|t| !t.name.starts_with("pooler")));
            assert_eq!(
                graph
                    .node
                    .iter()
                    .filter(|n| n.op_type == "LayerNormalization")
                    .count(),
                1 + 2 * 2
            );
            decompose_layer_norms(&mut proto);
            let vectors = run_and_pool(&proto, &[vec![1, 5, 7, 2], vec![1, 3, 2]]);
            assert_eq!(vectors.len(), 2);
            assert!(vectors
                .iter()
                .all(|v| v.len() == 8 && v.iter().all(|x| x.is_finite())));
        }
    }

    #[test]
    fn columns_quantize_symmetrically_with_their_own_scale() {
        // 2 rows x 3 columns; column 1 is all zero, column 2 has the largest magnitude.
        let w = [0.5, 0.0, -2.0, -0.25, 0.0, 1.0];
        let (q, scales) = quantize_columns(&w, 2, 3);
        assert_eq!(scales, vec![0.5 / 127.0, 1.0, 2.0 / 127.0]);
        assert_eq!(q, vec![127, 0, -127, -64, 0, 64]);
        for (v, (q, s)) in w.iter().zip(q.iter().zip(scales.iter().cycle())) {
            assert!((v - *q as f32 * s).abs() <= s / 2.0 + 1e-7);
        }
    }

    #[test]
    fn padding_does_not_change_a_sentence_vector() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tiny_model(tmp.path(), "");
        export(&model, &model.onnx()).unwrap();
        let mut proto = candle_onnx::read_file(model.onnx()).unwrap();
        decompose_layer_norms(&mut proto);
        let alone = run_and_pool(&proto, &[vec![1, 3, 2]]);
        let padded = run_and_pool(&proto, &[vec![1, 5, 7, 9, 4, 2], vec![1, 3, 2]]);
        assert!(super::super::cosine(&alone[0], &padded[1]) > 0.99999);
    }

    #[test]
    fn missing_tensor_is_named_in_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut model = tiny_model(tmp.path(), "");
        model.config.num_hidden_layers = 3; // the file has only two layers
        let err = export(&model, &model.onnx()).unwrap_err().to_string();
        assert!(
            err.contains("encoder.layer.2.attention.self.query.weight"),
            "{err}"
        );
        assert!(!model.onnx().exists());
    }
}
