//! Shared fixtures: paths of the bundled KB and a KB loaded once per test binary.

use assetkg::config::Config;
use assetkg::kb::KnowledgeBase;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn config() -> Config {
    let root = root();
    Config::new(root.join("data"), root.join("ontology"), root.join("kb")).expect("bundled config")
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A fresh in-memory KB holding only the ontology.
pub fn ontology_only() -> KnowledgeBase {
    let config = config();
    let kb = KnowledgeBase::in_memory(&config.shapes_file()).expect("shapes compile");
    kb.load_files(&[config.ontology_file()])
        .expect("ontology loads");
    kb
}

/// The bundled ontology and KB, loaded once into memory and shared (read-only) by the tests.
pub fn bundled() -> &'static KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| {
        let config = config();
        let kb = KnowledgeBase::in_memory(&config.shapes_file()).expect("shapes compile");
        let report = kb
            .load_files(&config.bundled_files().expect("kb dir"))
            .expect("bundled KB loads");
        assert!(report.committed);
        kb
    })
}

/// Every quad of the store as sorted N-Quads lines: two equal snapshots mean an unchanged store.
pub fn snapshot(kb: &KnowledgeBase) -> Vec<String> {
    let mut quads: Vec<String> = kb
        .backend()
        .quads(None, None, None, None)
        .expect("quads")
        .iter()
        .map(|q| q.to_string())
        .collect();
    quads.sort();
    quads
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write fixture");
    path
}
