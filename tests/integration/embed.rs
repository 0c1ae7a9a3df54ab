//! Embeddings on the real all-MiniLM-L6-v2 weights (fetched by scripts/fetch-models.sh): our
//! candle encoder against an independent numpy forward pass, ONNX Runtime (fastembed, running
//! our exported graph) against candle, and padding that does not change a vector.

use crate::common::root;
use assetkg::embed::bert::BertEncoder;
use assetkg::embed::fastembed::FastEmbedder;
use assetkg::embed::{cosine, ensure_onnx, Embedder, ModelDir};
use std::sync::OnceLock;

pub fn model_dir() -> ModelDir {
    let dir = root().join("models/all-MiniLM-L6-v2");
    ModelDir::open(&dir)
        .unwrap_or_else(|e| panic!("{e} — run scripts/fetch-models.sh (make test does)"))
}

pub fn candle() -> &'static BertEncoder {
    static ENCODER: OnceLock<BertEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| BertEncoder::load(&model_dir()).expect("candle encoder loads"))
}

pub fn fastembed() -> &'static FastEmbedder {
    static EMBEDDER: OnceLock<FastEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let model = model_dir();
        ensure_onnx(&model).expect("onnx export");
        FastEmbedder::load(&model, &root().join("models/onnxruntime/libonnxruntime.so"))
            .expect("fastembed loads")
    })
}

struct Reference {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference() -> Vec<Reference> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/minilm-reference.json"))
        .expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| Reference {
            text: s["text"].as_str().expect("text").to_owned(),
            token_ids: s["token_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect(),
            embedding: s["embedding"]
                .as_array()
                .expect("vec")
                .iter()
                .map(|v| v.as_f64().expect("f") as f32)
                .collect(),
        })
        .collect()
}

#[test]
fn candle_matches_the_numpy_reference() {
    let reference = reference();
    assert!(reference.len() >= 5);
    let texts: Vec<&str> = reference.iter().map(|r| r.text.as_str()).collect();
    let (ids, _) = candle().tokenize(&texts).expect("tokenize");
    let ids = ids.to_vec2::<u32>().expect("ids");
    let vectors = candle().embed(&texts).expect("embed");
    for ((r, v), row) in reference.iter().zip(&vectors).zip(&ids) {
        assert_eq!(
            &row[..r.token_ids.len()],
            r.token_ids.as_slice(),
            "token ids of {:?}",
            r.text
        );
        let c = cosine(v, &r.embedding);
        assert!(c >= 0.999, "{:?}: cosine {c}", r.text);
    }
}

#[test]
fn onnx_runtime_matches_candle_and_the_reference() {
    let reference = reference();
    let texts: Vec<&str> = reference.iter().map(|r| r.text.as_str()).collect();
    let ort = fastembed().embed(&texts).expect("ort embed");
    let ours = candle().embed(&texts).expect("candle embed");
    assert_eq!(fastembed().dim(), 384);
    for ((r, a), b) in reference.iter().zip(&ort).zip(&ours) {
        let c = cosine(a, b);
        assert!(c >= 0.9999, "{:?}: ort vs candle cosine {c}", r.text);
        let c = cosine(a, &r.embedding);
        assert!(c >= 0.999, "{:?}: ort vs numpy cosine {c}", r.text);
    }
}

#[test]
fn the_int8_graph_stays_close_to_float32_and_has_its_own_model_id() {
    use assetkg::embed::onnx::Precision;
    let model = model_dir();
    assetkg::embed::ensure_onnx_of(&model, Precision::Int8).expect("int8 export");
    let int8 = FastEmbedder::load_precision(
        &model,
        Precision::Int8,
        &root().join("models/onnxruntime/libonnxruntime.so"),
    )
    .expect("int8 graph loads");
    assert_eq!(int8.model_id(), format!("{}+int8", fastembed().model_id()));
    let reference = reference();
    let texts: Vec<&str> = reference.iter().map(|r| r.text.as_str()).collect();
    let quantized = int8.embed(&texts).expect("int8 embed");
    let exact = fastembed().embed(&texts).expect("float32 embed");
    for ((r, q), e) in reference.iter().zip(&quantized).zip(&exact) {
        let c = cosine(q, e);
        // Quantization moves vectors a little (the benchmark measures 0.98 at worst over 512
        // KB texts), never to another meaning; a broken graph lands far below.
        assert!(
            (0.97..1.0).contains(&c),
            "{:?}: int8 vs float32 cosine {c}",
            r.text
        );
    }
}

#[test]
fn padding_does_not_change_a_vector() {
    let alone = candle().embed(&["bearing wear"]).expect("embed");
    let batch = candle()
        .embed(&[
            "bearing wear",
            "the gearbox casing vibration doubled since the last survey",
        ])
        .expect("embed");
    assert!(cosine(&alone[0], &batch[0]) > 0.99999);
    let norm: f32 = batch[1].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "vectors are unit length");
}

#[test]
fn layer_norm_weights_receive_gradients() {
    use candle_core::Var;
    let encoder = candle();
    let (ids, mask) = encoder
        .tokenize(&["bearing wear", "oil debris"])
        .expect("tokenize");
    let embedded = encoder.bert().embed(&ids, &mask).expect("forward");
    // A loss that depends on every weight: the similarity of the two sentences.
    let loss = (embedded.get(0).expect("row") * embedded.get(1).expect("row"))
        .expect("mul")
        .sum_all()
        .expect("sum");
    let grads = loss.backward().expect("backward");
    let vars = encoder.varmap().data().lock().expect("lock").clone();
    let grad_norm = |name: &str| -> f32 {
        let var: &Var = vars
            .get(name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        let g = grads
            .get(var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        g.sqr()
            .expect("sqr")
            .sum_all()
            .expect("sum")
            .to_scalar::<f32>()
            .expect("scalar")
            .sqrt()
    };
    for name in [
        "embeddings.LayerNorm.weight",
        "encoder.layer.0.attention.output.LayerNorm.weight",
        "encoder.layer.5.output.LayerNorm.bias",
        "encoder.layer.3.attention.self.query.weight",
    ] {
        assert!(grad_norm(name) > 0.0, "{name} gets no gradient");
    }
}
