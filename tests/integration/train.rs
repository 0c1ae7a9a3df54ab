//! Fine-tuning on the real all-MiniLM-L6-v2 weights: one optimiser step, frozen layers, the
//! written model reloaded by candle and ONNX Runtime, and a stopped run resumed to the very
//! weights of an uninterrupted one. The dataset is a small slice of the bundled KB's tasks.

use crate::common::{bundled, root};
use crate::embed::model_dir;
use assetkg::augment::descriptions::Descriptions;
use assetkg::embed::bert::BertEncoder;
use assetkg::embed::fastembed::FastEmbedder;
use assetkg::embed::{cosine, Embedder, ModelDir};
use assetkg::tasks::{self, Dataset, Split, TaskCode};
use assetkg::train::encoder::{encode, FrozenCache};
use assetkg::train::optim::AdamW;
use assetkg::train::trainer::layer_of;
use assetkg::train::{loss, train, Recipe, RunOptions};
use candle_core::{Device, Tensor};
use std::collections::BTreeSet;
use std::path::Path;

/// FM2S queries of the bundled KB: 6 for training, 2 each for validation and test, and a
/// corpus of their items plus a few others.
fn small_dataset() -> Dataset {
    let full = tasks::build(bundled(), tasks::DEFAULT_SEED).expect("tasks build");
    let mut queries = Vec::new();
    for (split, n) in [(Split::Train, 6), (Split::Validation, 2), (Split::Test, 2)] {
        queries.extend(full.queries_of(TaskCode::FM2S, split).take(n).cloned());
    }
    let mut keep: BTreeSet<&str> = queries
        .iter()
        .flat_map(|q| q.positives.iter().chain(&q.hard_negatives))
        .map(String::as_str)
        .collect();
    keep.extend(full.corpus.iter().take(5).map(|i| i.id.as_str()));
    let corpus = full
        .corpus
        .iter()
        .filter(|i| keep.contains(i.id.as_str()))
        .cloned()
        .collect();
    Dataset {
        seed: full.seed,
        kb_version: full.kb_version.clone(),
        corpus,
        queries,
    }
}

fn recipe(out: &Path) -> Recipe {
    let text = format!(
        "out = {:?}\nbase_model = {:?}\nfrozen_layers = 5\nseed = 7\n\
         [data]\nvariants = 2\nmax_length = 48\n\
         [schedule]\nepochs = 2\nbatch_size = 4\nlearning_rate = 1e-4\nwarmup = 0.2\n\
         eval_every = 3\ncheckpoint_every = 2\n",
        out.display().to_string(),
        model_dir().dir.display().to_string()
    );
    Recipe::parse(&text, Path::new("test.toml")).expect("test recipe")
}

fn values(encoder: &BertEncoder, name: &str) -> Vec<f32> {
    let vars = encoder.varmap().data().lock().expect("vars");
    vars[name]
        .as_tensor()
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("values")
}

#[test]
fn one_step_lowers_the_loss_changes_trainable_weights_and_keeps_frozen_ones() {
    let encoder = BertEncoder::load(&model_dir()).expect("model loads");
    let mut cache = FrozenCache::new(4, 384);
    let queries = [
        "Query: Asset: electric motor, Fault: bearing wear",
        "Query: Asset: centrifugal pump, Fault: cavitation",
    ];
    let items = [
        "Sensor: vibration",
        "Sensor: discharge pressure",
        "Sensor: oil debris",
        "Sensor: winding temperature",
    ];
    let all: Vec<&str> = queries.iter().chain(&items).copied().collect();
    cache.fill(&encoder, &all, false).expect("cache fills");
    let pair_queries = [queries[0], queries[0], queries[1], queries[1]];
    let labels = Tensor::new(&[1f32, 0.0, 1.0, 0.0], &Device::Cpu).unwrap();
    let loss_now = || {
        let q = encode(encoder.bert(), &cache, &pair_queries).unwrap();
        let d = encode(encoder.bert(), &cache, &items).unwrap();
        loss::contrastive(&q, &d, &labels, 0.5).unwrap()
    };

    let trainable = "encoder.layer.5.output.dense.weight";
    let frozen = "encoder.layer.2.attention.self.query.weight";
    let embeddings = "embeddings.word_embeddings.weight";
    let before: Vec<Vec<f32>> = [trainable, frozen, embeddings]
        .iter()
        .map(|n| values(&encoder, n))
        .collect();
    let vars = encoder
        .varmap()
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| layer_of(n).is_some_and(|l| l >= 4))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let mut optimizer = AdamW::new(vars, 0.01).unwrap();

    let first = loss_now();
    let first_value = first.to_scalar::<f32>().unwrap();
    optimizer.step(&first, 1e-3).unwrap();
    let second_value = loss_now().to_scalar::<f32>().unwrap();
    assert!(
        second_value < first_value,
        "loss {first_value} → {second_value}"
    );
    assert_ne!(
        values(&encoder, trainable),
        before[0],
        "trainable layer moved"
    );
    assert_eq!(
        values(&encoder, frozen),
        before[1],
        "frozen layer bit-identical"
    );
    assert_eq!(
        values(&encoder, embeddings),
        before[2],
        "embeddings bit-identical"
    );
}

#[test]
fn a_trained_model_reloads_to_identical_vectors_and_a_stopped_run_resumes_exactly() {
    let dataset = small_dataset();
    let descriptions = Descriptions::from_kb(bundled()).expect("descriptions");
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path, stop_after: Option<usize>| {
        let mut cache = FrozenCache::new(5, 384);
        let options = RunOptions {
            progress: false,
            resume: true,
            write_model: true,
            stop_after,
        };
        train(&recipe(out), &dataset, &descriptions, &mut cache, options).expect("training runs")
    };

    // An uninterrupted run.
    let a = tmp.path().join("a");
    let trained = run(&a, None);
    assert!(!trained.outcome.stopped);
    assert!(trained.outcome.steps > 6, "{} steps", trained.outcome.steps);
    assert_eq!(trained.outcome.model_dir.as_deref(), Some(a.as_path()));
    assert!(
        !tmp.path().join("a.checkpoint").exists(),
        "checkpoint removed"
    );
    for file in ["training.json", "README.md", "training.png", "model.onnx"] {
        assert!(a.join(file).is_file(), "{file} written");
    }

    // The written directory reloads to the very vectors of the trained encoder, and ONNX
    // Runtime runs its exported graph to the same vectors.
    let texts = [
        "Instruct: Given an asset and a failure mode, retrieve the sensors\nQuery: Asset: pump",
        "Sensor: vibration",
    ];
    let expected = trained.encoder.embed(&texts).unwrap();
    let reloaded = BertEncoder::load(&ModelDir::open(&a).unwrap()).unwrap();
    assert_eq!(reloaded.embed(&texts).unwrap(), expected);
    let onnx = FastEmbedder::load(
        &ModelDir::open(&a).unwrap(),
        &root().join("models/onnxruntime/libonnxruntime.so"),
    )
    .expect("fastembed loads the trained model");
    for (x, y) in onnx.embed(&texts).unwrap().iter().zip(&expected) {
        assert!(cosine(x, y) > 0.9999, "onnx vs candle {}", cosine(x, y));
    }
    // Kept weights from a training step are not the base model's.
    let base = BertEncoder::load(&model_dir())
        .unwrap()
        .embed(&texts)
        .unwrap();
    assert_eq!(base != expected, trained.outcome.best_step > 0);

    // The same recipe stopped after 5 steps, then resumed, ends with identical weights.
    let b = tmp.path().join("b");
    let stopped = run(&b, Some(5)).outcome;
    assert!(stopped.stopped && stopped.model_dir.is_none() && !b.exists());
    assert!(tmp.path().join("b.checkpoint/state.json").is_file());
    let resumed = run(&b, None).outcome;
    assert_eq!(resumed.steps, trained.outcome.steps);
    assert_eq!(resumed.best_step, trained.outcome.best_step);
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(weights(&a) == weights(&b), "resumed weights differ");
}
