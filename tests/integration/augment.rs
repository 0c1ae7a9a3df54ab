//! Augmentation: `describe` against a real HTTP server speaking the OpenAI chat-completions wire
//! format (started on 127.0.0.1:0, recording what it receives, answering scripted texts), the
//! real Oxigraph store and SHACL engine, and the bundled KB; then the choice of description.

use crate::common::{config, fixture, ontology_only, snapshot, write};
use assetkg::augment::describe::{describe, AugmentError, DescribeOptions};
use assetkg::augment::descriptions::{DescriptionSource, Descriptions, VettingStatus};
use assetkg::augment::llm::{
    ChatMessage, ChatRequest, LlmClient, LlmError, OpenAiClient, OpenAiConfig,
};
use assetkg::kb::{parse_file, KbError, KnowledgeBase, QueryOutcome};
use oxigraph::model::{GraphNameRef, NamedNodeRef, Term};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BEARING_WEAR: &str = "https://w3id.org/assetkg/kb/failure-mode/bearing-wear";
const ELECTRIC_MOTOR: &str = "https://w3id.org/assetkg/kb/class/electric-motor";
const PUMP: &str = "https://w3id.org/assetkg/kb/class/pump";
const TEST_PUMP: &str = "https://w3id.org/assetkg/kb/class/test-pump";
const TEST_ROTATING: &str = "https://w3id.org/assetkg/kb/category/test-rotating";
const TEST_FMC: &str = "https://w3id.org/assetkg/kb/failure-mode-class/TST";
const MODEL: &str = "test-model:1b";
const KEY: &str = "sk-test-secret-123";

/// One request the test server received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    path: String,
    authorization: Option<String>,
    pub(crate) body: Value,
}

impl Received {
    pub(crate) fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or_default().to_owned(),
                            m["content"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The grounding prompt: the first user message.
    fn prompt(&self) -> String {
        self.messages()
            .into_iter()
            .next()
            .map(|(_, c)| c)
            .unwrap_or_default()
    }
}

type Script = Arc<dyn Fn(&Value) -> (u16, String) + Send + Sync>;

/// A minimal HTTP/1.1 server for chat completions: one request per connection.
pub(crate) struct ChatServer {
    pub(crate) base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl ChatServer {
    pub(crate) async fn start(
        script: impl Fn(&Value) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, log) = (script.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, script, log).await;
                });
            }
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            received,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    fn client(&self) -> OpenAiClient {
        let mut config = OpenAiConfig::new(&self.base_url, MODEL);
        config.api_key = Some(KEY.to_owned());
        config.timeout = Duration::from_secs(30);
        OpenAiClient::new(config).expect("client")
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Script,
    log: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let mut length = 0;
    let mut authorization = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    let (status, reply) = script(&body);
    log.lock().expect("lock").push(Received {
        path,
        authorization,
        body,
    });
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        if status == 200 { "OK" } else { "Error" },
        reply.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A chat completion answering `text`.
pub(crate) fn completion(text: &str) -> (u16, String) {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30}
    });
    (200, body.to_string())
}

/// The label after "Entry: " in the first message of a request body.
fn entry(body: &Value) -> String {
    let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
    prompt
        .lines()
        .find_map(|l| l.strip_prefix("Entry: "))
        .map(|l| l.split(" (").next().unwrap_or(l).to_owned())
        .unwrap_or_default()
}

fn tries(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["role"] == "user").count())
        .unwrap_or(0)
}

/// A good answer for any entity.
fn answer_for(label: &str) -> String {
    format!(
        "{label} is described here for a maintenance engineer, in words a search query can use."
    )
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A fresh in-memory KB with the ontology and the whole bundled KB.
fn fresh_bundled() -> KnowledgeBase {
    let config = config();
    let kb = KnowledgeBase::in_memory(&config.shapes_file()).expect("shapes compile");
    kb.load_files(&config.bundled_files().expect("kb dir"))
        .expect("bundled KB loads");
    kb
}

/// A fresh in-memory KB with the ontology and tests/fixtures/mini.ttl.
fn fresh_mini() -> KnowledgeBase {
    let kb = ontology_only();
    kb.load_files(&[fixture("mini.ttl")]).expect("mini loads");
    kb
}

fn rows(kb: &KnowledgeBase, query: &str) -> Vec<Vec<Option<Term>>> {
    match kb.query(query).expect("query runs") {
        QueryOutcome::Solutions { rows, .. } => rows,
        other => panic!("not a SELECT result: {other:?}"),
    }
}

fn text(term: &Option<Term>) -> String {
    match term {
        Some(Term::Literal(l)) => l.value().to_owned(),
        Some(Term::NamedNode(n)) => n.as_str().to_owned(),
        other => panic!("unexpected term {other:?}"),
    }
}

fn options(iris: &[&str]) -> DescribeOptions {
    DescribeOptions {
        iris: iris.iter().map(|s| s.to_string()).collect(),
        ..DescribeOptions::default()
    }
}

#[tokio::test]
async fn describe_stores_grounded_descriptions_with_provenance() {
    let kb = fresh_bundled();
    let server = ChatServer::start(|body| completion(&answer_for(&entry(body)))).await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("descriptions-test.ttl");
    let mut first = options(&["fm:bearing-wear", ELECTRIC_MOTOR]);
    first.out = Some(out.clone());

    let report = describe(&kb, &client, &first).await.expect("describe runs");
    assert_eq!(report.failed, Vec::<(String, String)>::new());
    assert_eq!(report.described.len(), 2, "{report:?}");
    assert!(report.committed && report.skipped_existing == 0);
    assert_eq!(report.model, MODEL);
    assert_eq!(
        report.graph,
        format!(
            "https://w3id.org/assetkg/graph/descriptions-{}",
            report.run_id
        )
    );

    // What went over the wire.
    let received = server.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.body["model"], MODEL);
    }
    let request = received
        .iter()
        .find(|r| entry(&r.body) == "bearing wear")
        .expect("a request for bearing wear");
    let prompt = request.prompt();
    let definition = text(
        &rows(
            &kb,
            "SELECT ?d WHERE { fm:bearing-wear skos:definition ?d }",
        )[0][0],
    );
    assert!(
        prompt.contains("Entry: bearing wear (failure mode)"),
        "{prompt}"
    );
    assert!(
        prompt.contains(&format!("Definition: {definition}")),
        "{prompt}"
    );
    assert!(
        prompt.contains("worn bearing"),
        "synonyms are shown: {prompt}"
    );
    let classes: Vec<String> = rows(
        &kb,
        "SELECT ?l WHERE { fm:bearing-wear akg:inFailureModeClass/skos:prefLabel ?l }",
    )
    .iter()
    .map(|r| text(&r[0]))
    .collect();
    assert!(
        classes
            .iter()
            .any(|c| prompt.contains(&format!("- bearing wear — in failure-mode class → {c}"))),
        "a KB relation is rendered with the other entity's label: {prompt}"
    );
    assert!(
        prompt.contains("relevant sensor per experts: vibration"),
        "expert judgments are shown: {prompt}"
    );
    assert!(prompt.contains("at most 40 words"), "{prompt}");
    let relation_lines = prompt.lines().filter(|l| l.starts_with("- ")).count();
    assert!(
        (3..=15).contains(&relation_lines),
        "{relation_lines} relation lines"
    );

    // What was stored, with its provenance.
    let stored = rows(
        &kb,
        "SELECT ?g ?text ?status ?hash ?model ?start ?end ?gstatus ?agent WHERE {
           GRAPH ?g { ?d akg:describes fm:bearing-wear ; akg:descriptionText ?text ;
                         akg:vettingStatus ?status ; akg:promptSha256 ?hash ;
                         prov:wasGeneratedBy ?run }
           ?run a akg:DescriptionRun ; prov:wasAssociatedWith ?agent ;
                prov:startedAtTime ?start ; prov:endedAtTime ?end .
           ?agent a prov:SoftwareAgent ; akg:modelName ?model .
           ?g a akg:FactGraph ; akg:vettingStatus ?gstatus ; prov:wasAttributedTo ?agent .
         }",
    );
    assert_eq!(stored.len(), 1, "{stored:?}");
    let row = &stored[0];
    assert_eq!(text(&row[0]), report.graph);
    assert_eq!(text(&row[1]), answer_for("bearing wear"));
    assert_eq!(text(&row[2]), "https://w3id.org/assetkg/ontology#proposed");
    assert_eq!(
        text(&row[3]),
        sha256(&prompt),
        "the hash is of the prompt sent"
    );
    assert_eq!(text(&row[4]), MODEL);
    assert_eq!(text(&row[7]), "https://w3id.org/assetkg/ontology#proposed");
    for time in [&row[5], &row[6]] {
        let Some(Term::Literal(l)) = time else {
            panic!("no time: {time:?}")
        };
        assert_eq!(
            l.datatype().as_str(),
            "http://www.w3.org/2001/XMLSchema#dateTime"
        );
    }
    assert!(text(&row[5]) <= text(&row[6]), "started before it ended");
    let violations = kb.validate_store().expect("validation runs");
    assert!(violations.is_empty(), "{violations:?}");

    // The Turtle file holds exactly the stored graph, and re-loads.
    let parsed = parse_file(&out).expect("the file parses");
    let graph = NamedNodeRef::new(&report.graph).expect("graph iri");
    let from_file: BTreeSet<String> = parsed.quads().map(|q| q.to_string()).collect();
    let from_store: BTreeSet<String> = kb
        .backend()
        .quads(None, None, None, Some(GraphNameRef::NamedNode(graph)))
        .expect("quads")
        .iter()
        .map(|q| q.to_string())
        .collect();
    assert_eq!(from_file, from_store);
    assert_eq!(parsed.graphs.len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left: {leftovers:?}"
    );

    // At the same (proposed) status, the definition written by people wins.
    let descriptions = Descriptions::from_kb(&kb).expect("descriptions");
    let chosen = descriptions.get(BEARING_WEAR).expect("bearing wear");
    assert_eq!(chosen.source, DescriptionSource::Definition);
    assert_eq!(chosen.status, VettingStatus::Proposed);
    assert_eq!(chosen.text, definition);
    assert!(descriptions
        .missing([BEARING_WEAR, ELECTRIC_MOTOR])
        .is_empty());
    assert_eq!(descriptions.missing([PUMP]), vec![PUMP.to_owned()]);
    assert!(descriptions.len() > 500, "every entity has its definition");

    // A vetted generated description beats a proposed definition; a rejected one is never used.
    kb.load_files(&[fixture("vetted-description.ttl")])
        .expect("the reviewed fixture loads");
    let descriptions = Descriptions::from_kb(&kb).expect("descriptions");
    let chosen = descriptions.get(BEARING_WEAR).expect("bearing wear");
    assert_eq!(chosen.status, VettingStatus::Vetted);
    assert_eq!(
        chosen.source,
        DescriptionSource::Generated {
            model: "reviewed-model".into()
        }
    );
    assert!(chosen.text.starts_with("Worn rolling or sliding bearing"));
    let pump = descriptions.get(PUMP).expect("pump");
    assert_eq!(
        pump.source,
        DescriptionSource::Definition,
        "the rejected text is not used"
    );
    assert_eq!(descriptions.missing([PUMP]), vec![PUMP.to_owned()]);

    // A second run finds nothing missing, asks nothing and writes nothing.
    let before = snapshot(&kb);
    let again = describe(&kb, &client, &options(&[BEARING_WEAR, ELECTRIC_MOTOR]))
        .await
        .expect("second run");
    assert!(again.described.is_empty() && again.failed.is_empty());
    assert_eq!(again.skipped_existing, 2);
    assert!(!again.committed);
    assert_eq!(server.received().len(), 2, "no new requests");
    assert_eq!(snapshot(&kb), before);

    // A run over a kind, with a limit, by the same model: a second graph that validates too.
    let categories = DescribeOptions {
        kinds: vec!["akg:EquipmentCategory".into()],
        limit: Some(3),
        ..DescribeOptions::default()
    };
    let by_kind = describe(&kb, &client, &categories).await.expect("kind run");
    assert_eq!(by_kind.described.len(), 3, "{by_kind:?}");
    assert!(by_kind.committed);
    assert_ne!(by_kind.graph, report.graph);
    let all_categories: Vec<String> = rows(&kb, "SELECT ?c WHERE { ?c a akg:EquipmentCategory }")
        .iter()
        .map(|r| text(&r[0]))
        .collect();
    let descriptions = Descriptions::from_kb(&kb).expect("descriptions");
    assert_eq!(
        descriptions.missing(&all_categories).len(),
        all_categories.len() - 3
    );
}

#[tokio::test]
async fn a_bad_answer_is_retried_once_then_reported_while_others_succeed() {
    let kb = fresh_mini();
    let overlong = vec!["word"; 100].join(" ");
    let server = ChatServer::start(move |body| {
        let retry = tries(body) > 1;
        match (entry(body).as_str(), retry) {
            ("test pump", false) => completion(""),
            ("test pump", true) => completion(&overlong),
            ("test failure", false) => completion("- a list item\n- another item"),
            (label, _) => completion(&answer_for(label)),
        }
    })
    .await;
    let client = server.client();
    let missing = "https://w3id.org/assetkg/kb/class/not-in-the-kb";
    let report = describe(
        &kb,
        &client,
        &options(&[TEST_PUMP, TEST_ROTATING, TEST_FMC, missing]),
    )
    .await
    .expect("describe runs");

    let described: Vec<&str> = report.described.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(described, vec![TEST_ROTATING, TEST_FMC], "{report:?}");
    assert_eq!(report.failed.len(), 2, "{report:?}");
    let (iri, reason) = &report.failed[0];
    assert_eq!(iri, TEST_PUMP);
    assert!(
        reason.contains("empty") && reason.contains("100 words"),
        "{reason}"
    );
    assert_eq!(report.failed[1].0, missing);
    assert!(
        report.failed[1].1.contains("not an entity"),
        "{:?}",
        report.failed[1]
    );
    assert!(report.committed);

    let received = server.received();
    let for_label = |label: &str| -> Vec<Received> {
        received
            .iter()
            .filter(|r| entry(&r.body) == label)
            .cloned()
            .collect()
    };
    let pump = for_label("test pump");
    assert_eq!(pump.len(), 2, "one retry, no more");
    let retry = pump[1].messages();
    assert_eq!(retry.len(), 2, "an empty answer is not replayed: {retry:?}");
    assert!(retry[1].1.contains("empty"), "{retry:?}");
    let fmc = for_label("test failure");
    let retry = fmc[1].messages();
    assert_eq!(retry.len(), 3, "{retry:?}");
    assert_eq!(
        retry[1],
        ("assistant".into(), "- a list item\n- another item".into())
    );
    assert!(
        retry[2].1.contains("list"),
        "the error is stated: {retry:?}"
    );
    assert_eq!(for_label("test rotating equipment").len(), 1);
    assert_eq!(received.len(), 5, "the unknown IRI is never sent");

    let stored = rows(&kb, "SELECT ?e WHERE { ?d akg:describes ?e } ORDER BY ?e");
    let stored: Vec<String> = stored.iter().map(|r| text(&r[0])).collect();
    assert_eq!(stored, vec![TEST_ROTATING.to_owned(), TEST_FMC.to_owned()]);
    let descriptions = Descriptions::from_kb(&kb).expect("descriptions");
    assert_eq!(
        descriptions.missing([TEST_PUMP, TEST_ROTATING, TEST_FMC]),
        vec![TEST_PUMP.to_owned()]
    );
}

#[tokio::test]
async fn an_http_error_names_url_and_status_and_writes_nothing() {
    let kb = fresh_mini();
    let before = snapshot(&kb);
    let server =
        ChatServer::start(|_| (500, "{\"error\":\"model exploded: out of memory\"}".into())).await;
    let client = server.client();
    let err = describe(&kb, &client, &options(&[TEST_PUMP]))
        .await
        .expect_err("a 500 stops the run");
    let message = err.to_string();
    assert!(matches!(
        &err,
        AugmentError::Llm {
            source: LlmError::Status { status: 500, .. },
            ..
        }
    ));
    assert!(
        message.contains(&format!("{}/chat/completions", server.base_url)),
        "{message}"
    );
    assert!(
        message.contains("500") && message.contains("out of memory"),
        "{message}"
    );
    assert!(message.contains(TEST_PUMP), "{message}");
    assert!(!message.contains(KEY), "the key is never shown: {message}");
    assert_eq!(snapshot(&kb), before);
}

#[tokio::test]
async fn the_client_names_the_url_for_broken_servers() {
    let request = ChatRequest::new(vec![ChatMessage::user("hello")]);
    // 2xx without choices[0].message.content.
    let server = ChatServer::start(|_| (200, "{\"choices\":[]}".into())).await;
    let client = server.client();
    let err = client.chat(&request).await.expect_err("no content");
    assert!(matches!(err, LlmError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.base_url), "{err}");
    assert!(
        err.to_string().contains("choices[0].message.content"),
        "{err}"
    );
    // A long error body is cut to 200 characters.
    let server = ChatServer::start(|_| (404, format!("no such model {}", "x".repeat(500)))).await;
    let err = server.client().chat(&request).await.expect_err("404");
    let LlmError::Status { status, body, url } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 404);
    assert!(url.starts_with(&server.base_url));
    assert!(body.chars().count() <= 201, "{body}");
    // Nothing listens.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/v1");
    let mut config = OpenAiConfig::new(&url, MODEL);
    config.api_key = Some(KEY.into());
    let err = OpenAiClient::new(config)
        .expect("client")
        .chat(&request)
        .await
        .expect_err("refused");
    assert!(matches!(err, LlmError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("{url}/chat/completions")),
        "{err}"
    );
    assert!(!err.to_string().contains(KEY));
    // A good answer, with usage.
    let server = ChatServer::start(|_| completion("Hello there, engineer.")).await;
    let response = server.client().chat(&request).await.expect("chat");
    assert_eq!(response.text, "Hello there, engineer.");
    assert_eq!(response.prompt_tokens, Some(120));
    assert_eq!(response.completion_tokens, Some(30));
    assert_eq!(server.client().model_id(), MODEL);
}

#[tokio::test]
async fn a_refused_write_leaves_the_store_and_the_directory_unchanged() {
    // The project's shapes plus a stricter limit on description texts, so that the answer the
    // checks accept is refused by SHACL at commit time.
    let config = config();
    let dir = tempfile::tempdir().expect("tempdir");
    let shapes = std::fs::read_to_string(config.shapes_file()).expect("shapes");
    let strict = write(
        dir.path(),
        "strict-shapes.ttl",
        &format!(
            "{shapes}\nshp:StrictDescriptionShape a sh:NodeShape ;\n    sh:targetClass akg:EntityDescription ;\n    sh:property shp:StrictDescription-text .\n\nshp:StrictDescription-text a sh:PropertyShape ;\n    sh:path akg:descriptionText ;\n    sh:maxLength 20 ;\n    sh:message \"test: descriptions of at most 20 characters\" .\n"
        ),
    );
    let kb = KnowledgeBase::in_memory(&strict).expect("strict shapes compile");
    kb.load_files(&[config.ontology_file(), fixture("mini.ttl")])
        .expect("mini loads");
    let before = snapshot(&kb);
    let server = ChatServer::start(|body| completion(&answer_for(&entry(body)))).await;
    let out_dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(&[TEST_PUMP]);
    opts.out = Some(out_dir.path().join("descriptions.ttl"));
    let err = describe(&kb, &server.client(), &opts)
        .await
        .expect_err("the shape refuses the text");
    let AugmentError::Store { graph, source } = &err else {
        panic!("expected a store error, got {err:?}")
    };
    assert!(graph.contains("descriptions-"), "{graph}");
    let KbError::Invalid(violations) = source else {
        panic!("expected violations, got {source:?}")
    };
    assert!(
        violations
            .iter()
            .any(|v| v.shape.as_deref() == Some("shp:StrictDescription-text")),
        "{violations:?}"
    );
    assert_eq!(snapshot(&kb), before, "nothing was written");
    assert_eq!(
        std::fs::read_dir(out_dir.path()).expect("dir").count(),
        0,
        "neither the file nor its temporary copy is left"
    );

    // A dry run asks the model and writes nothing either.
    let mut dry = options(&[TEST_PUMP]);
    dry.dry_run = true;
    dry.out = opts.out.clone();
    let report = describe(&kb, &server.client(), &dry)
        .await
        .expect("dry run");
    assert_eq!(report.described.len(), 1);
    assert!(!report.committed && report.out.is_none());
    assert_eq!(snapshot(&kb), before);
    assert_eq!(std::fs::read_dir(out_dir.path()).expect("dir").count(), 0);
}

#[test]
fn the_shapes_refuse_malformed_descriptions() {
    let kb = fresh_mini();
    let before = snapshot(&kb);
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        dir.path(),
        "bad-description.ttl",
        r#"@prefix akg:  <https://w3id.org/assetkg/ontology#> .
@prefix src:  <https://w3id.org/assetkg/source/> .
@prefix graph: <https://w3id.org/assetkg/graph/> .
@prefix cls:  <https://w3id.org/assetkg/kb/class/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix dct:  <http://purl.org/dc/terms/> .
@prefix xsd:  <http://www.w3.org/2001/XMLSchema#> .
graph:bad-descriptions a akg:FactGraph ;
    dct:title "bad descriptions"@en ;
    prov:wasAttributedTo src:assetkg-project ;
    akg:vettingStatus akg:proposed .
<https://w3id.org/assetkg/kb/run/bad> a akg:DescriptionRun , prov:Activity ;
    prov:wasAssociatedWith src:assetkg-project ;
    prov:startedAtTime "yesterday" .
<https://w3id.org/assetkg/kb/description/bad> a akg:EntityDescription ;
    akg:describes cls:test-pump , <https://w3id.org/assetkg/kb/class/nothing> ;
    akg:descriptionText "A plain string without a language tag." ;
    akg:promptSha256 "NOT-A-HASH" ;
    akg:vettingStatus akg:maybe ;
    prov:wasGeneratedBy <https://w3id.org/assetkg/kb/run/bad> .
"#,
    );
    let err = kb.load_files(&[bad]).expect_err("refused");
    let KbError::Invalid(violations) = &err else {
        panic!("expected violations, got {err:?}")
    };
    let on = |focus: &str, path: &str| {
        violations
            .iter()
            .any(|v| v.focus == focus && v.path.as_deref() == Some(path))
    };
    let desc = "<https://w3id.org/assetkg/kb/description/bad>";
    let run = "<https://w3id.org/assetkg/kb/run/bad>";
    for (focus, path) in [
        (desc, "akg:describes"),
        (desc, "akg:descriptionText"),
        (desc, "akg:promptSha256"),
        (desc, "akg:vettingStatus"),
        (run, "prov:wasAssociatedWith"),
        (run, "prov:startedAtTime"),
        (run, "prov:endedAtTime"),
    ] {
        assert!(
            on(focus, path),
            "no violation on {focus} {path}: {violations:#?}"
        );
    }
    assert_eq!(snapshot(&kb), before);
}
