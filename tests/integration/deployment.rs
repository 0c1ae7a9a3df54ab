//! Deployment beyond one machine, against real servers started on loopback: the graph in an
//! Oxigraph server reached over the SPARQL 1.1 Protocol, the index in LanceDB on an
//! S3-compatible server, and two `assetkg serve` replicas sharing both.

use crate::common::{bundled, config, root, snapshot};
use crate::embed::fastembed;
use crate::servers::{self, free_port, s3_options, ChildServer};
use assetkg::index::{entity_documents, EntityIndex, SearchMode, SearchRequest};
use assetkg::kb::backend::RemoteSparqlConfig;
use assetkg::kb::{Edit, EditRequest, KbError, KnowledgeBase, QueryOutcome};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn remote_config(server: &ChildServer) -> RemoteSparqlConfig {
    RemoteSparqlConfig::new(
        format!("{}/query", server.url),
        format!("{}/update", server.url),
    )
}

fn remote_kb(server: &ChildServer) -> KnowledgeBase {
    KnowledgeBase::remote(remote_config(server), &config().shapes_file()).expect("connect")
}

/// A snapshot without the version log, whose times differ between two loads, and with blank
/// node labels (which differ between two parses of the ontology) blanked out.
fn facts(kb: &KnowledgeBase) -> Vec<String> {
    let mut facts: Vec<String> = snapshot(kb)
        .into_iter()
        .filter(|q| !q.contains("<https://w3id.org/assetkg/graph/history>"))
        .map(|q| {
            q.split(' ')
                .map(|token| {
                    if token.starts_with("_:") {
                        "_:b"
                    } else {
                        token
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    facts.sort();
    facts
}

fn count(kb: &KnowledgeBase, query: &str) -> String {
    match kb.query(query).expect("query") {
        QueryOutcome::Solutions { rows, .. } => match &rows[0][0] {
            Some(oxigraph::model::Term::Literal(l)) => l.value().to_owned(),
            other => panic!("not a count: {other:?}"),
        },
        other => panic!("not a SELECT result: {other:?}"),
    }
}

#[test]
fn a_remote_store_holds_and_answers_what_the_embedded_store_does() {
    let server = servers::oxigraph();
    let kb = remote_kb(&server);
    let report = kb
        .load_files(&config().bundled_files().expect("kb dir"))
        .expect("the bundled KB loads into the remote store");
    assert!(report.committed);
    let local = bundled();
    assert_eq!(facts(&kb), facts(local), "the same quads in every graph");
    assert_eq!(kb.kb_version().unwrap(), local.kb_version().unwrap());
    assert_eq!(kb.current_version().unwrap(), report.kb_version);

    // Queries with the project prefixes, over the default graph (the merge) and named graphs.
    for query in [
        "SELECT (COUNT(DISTINCT ?s) AS ?n) { ?s a akg:Sensor }",
        "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s akg:detectableBy ?o } }",
        "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }",
    ] {
        assert_eq!(count(&kb, query), count(local, query), "{query}");
    }
    match kb
        .query("CONSTRUCT { fm:bearing-wear ?p ?o } WHERE { fm:bearing-wear ?p ?o }")
        .expect("construct")
    {
        QueryOutcome::Graph(triples) => assert!(triples.len() > 3, "{triples:?}"),
        other => panic!("not a graph: {other:?}"),
    }
    assert!(matches!(
        kb.query("SELECT ?s WHERE { ?s nope:x ?o }"),
        Err(KbError::QuerySyntax(_))
    ));
    // What the index embeds is read from the graph the same way.
    assert_eq!(
        entity_documents(&kb).unwrap(),
        entity_documents(local).unwrap()
    );
}

#[test]
fn curation_on_a_remote_store_is_validated_recorded_and_atomic() {
    let server = servers::oxigraph();
    let kb = remote_kb(&server);
    let config = config();
    kb.load_files(&[config.ontology_file(), crate::common::fixture("mini.ttl")])
        .expect("load");
    let before = snapshot(&kb);

    // Refused by the shapes: nothing reaches the store.
    let refused = kb.apply_edit(&EditRequest {
        edit: Edit::AddEntity {
            iri: "sensor:test-no-definition".to_owned(),
            class: "akg:Sensor".to_owned(),
            label: "no definition".to_owned(),
            definition: String::new(),
            alt_labels: vec![],
            relations: vec![],
        },
        agent: "erin".to_owned(),
        reason: "test".to_owned(),
    });
    assert!(refused.is_err());
    assert_eq!(
        snapshot(&kb),
        before,
        "a refused edit leaves the store unchanged"
    );

    let added = kb
        .apply_edit(&EditRequest {
            edit: Edit::AddEntity {
                iri: "cat:test-static".to_owned(),
                class: "category".to_owned(),
                label: "test static equipment".to_owned(),
                definition: "Equipment that does not move, for tests.".to_owned(),
                alt_labels: vec![],
                relations: vec![],
            },
            agent: "erin".to_owned(),
            reason: "a category the site uses".to_owned(),
        })
        .expect("add entity");
    kb.apply_edit(&EditRequest {
        edit: Edit::AddEntity {
            iri: "cls:test-tank".to_owned(),
            class: "class".to_owned(),
            label: "test tank".to_owned(),
            definition: "A vessel that stores liquid, for tests.".to_owned(),
            alt_labels: vec![],
            relations: vec![("akg:inCategory".to_owned(), "cat:test-static".to_owned())],
        },
        agent: "erin".to_owned(),
        reason: "tanks are inspected too".to_owned(),
    })
    .expect("add a class in it");
    let proposed = kb
        .apply_edit(&EditRequest {
            edit: Edit::ProposeRelation {
                subject: "fmc:TST".to_owned(),
                predicate: "akg:appliesTo".to_owned(),
                object: "cls:test-tank".to_owned(),
            },
            agent: "erin".to_owned(),
            reason: "seen on tanks".to_owned(),
        })
        .expect("propose");
    assert_ne!(proposed.previous_version, added.version.id);
    assert_eq!(kb.current_version().unwrap(), proposed.version.id);
    assert_eq!(kb.versions().unwrap().len(), 4, "the load and three edits");
    let status = |graph_status: &str| {
        let query = format!(
            "ASK {{ GRAPH ?g {{ fmc:TST akg:appliesTo cls:test-tank . ?g akg:vettingStatus {graph_status} }} }}"
        );
        matches!(kb.query(&query).expect("ask"), QueryOutcome::Boolean(true))
    };
    assert!(status("akg:proposed"));
    assert!(!status("akg:vetted"));
}

#[test]
fn the_index_lives_in_an_s3_bucket() {
    let s3 = servers::s3("assetkg");
    let options = s3_options(&s3.url);
    let uri = "s3://assetkg/entities";
    let docs: Vec<_> = entity_documents(bundled())
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == "failure_mode" || d.kind == "sensor")
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let index = EntityIndex::open_with(uri, &options).await.expect("open");
        let report = index.sync(&docs, fastembed(), false).await.expect("sync");
        assert_eq!(report.added, docs.len());
        let request = SearchRequest::new("bearing wear")
            .kinds(["failure_mode"])
            .limit(5);
        let hits = index.search(&request, fastembed()).await.expect("search");
        assert_eq!(hits.first().map(|h| h.label.as_str()), Some("bearing wear"));

        // Another handle on the bucket (another replica) reads the same rows, by LanceDB's
        // own queries too (no in-memory view).
        let other = EntityIndex::open_with(uri, &options)
            .await
            .expect("open again")
            .with_memory_view_max_rows(0);
        for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
            let request = request.clone().mode(mode);
            let a = index.search(&request, fastembed()).await.expect("search");
            let b = other.search(&request, fastembed()).await.expect("search");
            let iris = |hits: &[assetkg::index::Hit]| -> Vec<String> {
                hits.iter().map(|h| h.iri.clone()).collect()
            };
            assert_eq!(iris(&a), iris(&b), "{mode:?}");
        }
        let again = other.sync(&docs, fastembed(), false).await.expect("sync");
        assert!(again.is_noop(), "{again:?}");
    });
}

/// An `assetkg` process with the remote graph and the S3 index.
struct Replica {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assetkg(shared: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_assetkg"));
    command.current_dir(root()).args(shared);
    command
}

fn start_replica(shared: &[String], service_config: &std::path::Path) -> Replica {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(data.path().join("serve.log")).unwrap();
    let mut child = assetkg(shared)
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--service-config")
        .arg(service_config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start assetkg serve");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(data.path().join("serve.log")).unwrap_or_default();
            panic!("the replica exited with {status}:\n{log}");
        }
        if ureq::get(&format!("{url}/readyz")).call().is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the replica was not ready after 300 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Replica {
        child,
        url,
        _data: data,
    }
}

fn graphql(replica: &Replica, token: Option<&str>, query: &str) -> Value {
    let mut request = ureq::post(&format!("{}/graphql", replica.url));
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let text = request
        .header("Content-Type", "application/json")
        .send(json!({ "query": query }).to_string())
        .expect("graphql request")
        .body_mut()
        .read_to_string()
        .expect("graphql body");
    let body: Value = serde_json::from_str(&text).expect("graphql json");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

#[test]
fn two_replicas_share_the_graph_and_the_index() {
    let graph = servers::oxigraph();
    let s3 = servers::s3("assetkg");
    let mut shared = vec![
        "--sparql-query-url".to_owned(),
        format!("{}/query", graph.url),
        "--sparql-update-url".to_owned(),
        format!("{}/update", graph.url),
        "--index-uri".to_owned(),
        "s3://assetkg/index".to_owned(),
    ];
    for (key, value) in s3_options(&s3.url) {
        shared.push("--index-option".to_owned());
        shared.push(format!("{key}={value}"));
    }
    let load = assetkg(&shared).arg("load").output().expect("assetkg load");
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let (token, sha256) = assetkg::api::auth::new_token();
    let service_config = dir.path().join("service.toml");
    std::fs::write(
        &service_config,
        format!("[[tokens]]\nname = \"carl\"\nrole = \"curator\"\nsha256 = \"{sha256}\"\n"),
    )
    .unwrap();
    // One after the other: the first embeds the KB into the bucket, the second finds it there.
    let a = start_replica(&shared, &service_config);
    let b = start_replica(&shared, &service_config);
    let version = |r: &Replica| graphql(r, None, "{ kbVersion }")["kbVersion"].clone();
    assert_eq!(version(&a), version(&b));

    let edit = graphql(
        &a,
        Some(&token),
        r#"mutation { addEntity(input: {
             iri: "fm:test-bearing-spalling", class: "failure mode", label: "bearing spalling",
             definition: "Flakes of metal breaking out of a rolling bearing's raceway by surface fatigue.",
             altLabels: ["raceway spalling"],
             relations: [{predicate: "akg:inFailureModeClass", object: "fmc:VIB"},
                         {predicate: "akg:detectableBy", object: "sensor:vibration"}],
             reason: "seen on site" }) { kbVersion } }"#,
    );
    let new_version = edit["addEntity"]["kbVersion"].clone();
    assert_eq!(version(&b), new_version, "B reads the graph A wrote");

    // Graph: B's SPARQL endpoint and GraphQL see the new entity and its relation.
    let ask = ureq::get(&format!(
        "{}/sparql?query={}",
        b.url,
        "ASK%20%7B%20fm%3Atest-bearing-spalling%20akg%3AdetectableBy%20sensor%3Avibration%20%7D"
    ))
    .header("Accept", "application/sparql-results+json")
    .call()
    .expect("sparql")
    .body_mut()
    .read_to_string()
    .expect("sparql body");
    let ask: Value = serde_json::from_str(&ask).expect("sparql json");
    assert_eq!(ask["boolean"], json!(true), "{ask}");

    // Search: B finds it in the shared index (its table handle refreshes within a second).
    let started = Instant::now();
    loop {
        let hits = graphql(
            &b,
            None,
            r#"{ search(text: "raceway spalling of a rolling bearing", kinds: [FAILURE_MODE], limit: 3) { iri } }"#,
        );
        if hits["search"][0]["iri"]
            == json!("https://w3id.org/assetkg/kb/failure-mode/test-bearing-spalling")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "B never found the new entity: {hits}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
