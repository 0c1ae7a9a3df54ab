//! The service on a real socket (127.0.0.1:0) over an in-memory copy of the bundled KB and a
//! LanceDB index in a temporary directory, with the real model: GraphQL queries, pagination,
//! search in each mode with filters, recommendation with explanations, the SPARQL protocol's
//! formats, authentication and roles, limits, curation visible in SPARQL and search (and no
//! stale vector), an invalid edit that changes nothing, metrics, and the SDL snapshot.

use crate::common::{config, root, snapshot};
use crate::embed::fastembed;
use assetkg::api::config::{Role, ServiceConfig, TokenEntry};
use assetkg::api::{auth, serve, AppState, Services};
use assetkg::embed::{EmbedResult, Embedder};
use assetkg::index::{entity_documents, EntityIndex};
use assetkg::kb::KnowledgeBase;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The shared fastembed model, as the service's `Arc<dyn Embedder>`.
pub(crate) struct SharedModel;

impl Embedder for SharedModel {
    fn model_id(&self) -> &str {
        fastembed().model_id()
    }
    fn dim(&self) -> usize {
        fastembed().dim()
    }
    fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>> {
        fastembed().embed(texts)
    }
}

/// An index of the bundled KB, synced once; each server gets a copy.
fn synced_index_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let kb = crate::common::bundled();
        let docs = entity_documents(kb).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let index = EntityIndex::open(&dir.path().to_string_lossy())
                .await
                .unwrap();
            index.sync(&docs, fastembed(), false).await.unwrap();
        });
        dir
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Tokens of the test configurations, by role.
struct Tokens {
    reader: String,
    curator: String,
    admin: String,
}

fn tokens_config(anonymous_read: bool) -> (ServiceConfig, Tokens) {
    let mut config = ServiceConfig {
        anonymous_read,
        ..ServiceConfig::default()
    };
    let mut make = |name: &str, role: Role| {
        let (token, sha256) = auth::new_token();
        config.tokens.push(TokenEntry {
            name: name.into(),
            role,
            sha256,
        });
        token
    };
    let tokens = Tokens {
        reader: make("rita", Role::Reader),
        curator: make("carl", Role::Curator),
        admin: make("ada", Role::Admin),
    };
    (config, tokens)
}

pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) kb: Arc<KnowledgeBase>,
    pub(crate) services: Arc<Services>,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _index_dir: tempfile::TempDir,
}

impl Server {
    pub(crate) async fn start(service: ServiceConfig) -> Self {
        let index_source = tokio::task::spawn_blocking(|| synced_index_dir().to_owned())
            .await
            .unwrap();
        let config = config();
        let kb = KnowledgeBase::in_memory(&config.shapes_file()).expect("shapes compile");
        kb.load_files(&config.bundled_files().expect("kb dir"))
            .expect("bundled KB loads");
        let kb = Arc::new(kb);
        let index_dir = tempfile::tempdir().unwrap();
        copy_dir(&index_source, index_dir.path());
        let index = EntityIndex::open(&index_dir.path().to_string_lossy())
            .await
            .unwrap();
        let services = Services::start(kb.clone(), index, Arc::new(SharedModel), service)
            .await
            .expect("services start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(AppState::new(services.clone()), listener, async {
            let _ = stopped.await;
        }));
        Self {
            url,
            kb,
            services,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _index_dir: index_dir,
        }
    }

    /// POSTs a GraphQL request; returns the HTTP status and the JSON body.
    pub(crate) async fn graphql_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A GraphQL query that must succeed; returns `data`.
    pub(crate) async fn data(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.graphql_as(token, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{query}\n{body:#}");
        body["data"].clone()
    }

    /// The `code` of the first GraphQL error.
    async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let (_, body) = self.graphql_as(token, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {body:#}"))
            .to_owned()
    }

    async fn select(&self, query: &str) -> Vec<Value> {
        let response = self
            .client
            .get(format!("{}/sparql", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let json: Value = response.json().await.unwrap();
        json["results"]["bindings"].as_array().unwrap().clone()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().expect("server stops cleanly");
        }
    }
}

const LABEL_OF_VIBRATION: &str = "SELECT ?label WHERE { sensor:vibration skos:prefLabel ?label }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparql_protocol_formats_updates_by_role_errors_health_and_shutdown() {
    let (service, tokens) = tokens_config(true);
    let server = Server::start(service).await;
    let client = &server.client;
    let sparql = format!("{}/sparql", server.url);

    // GET, default format: SPARQL JSON.
    let response = client
        .get(&sparql)
        .query(&[("query", LABEL_OF_VIBRATION)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/sparql-results+json"
    );
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["head"]["vars"][0], "label");
    assert_eq!(
        json["results"]["bindings"][0]["label"]["value"],
        "vibration"
    );

    // The default graph is the merge of the fact graphs: a fact stated by two files counts once.
    let counted = server
        .select("SELECT (COUNT(*) AS ?n) WHERE { ?s a akg:Sensor }")
        .await;
    let distinct = server
        .select("SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a akg:Sensor }")
        .await;
    assert_eq!(counted[0]["n"]["value"], distinct[0]["n"]["value"]);

    // POST body, CSV; POST form, TSV; XML by q-value.
    let csv = client
        .post(&sparql)
        .header(CONTENT_TYPE, "application/sparql-query")
        .header(ACCEPT, "text/csv")
        .body(LABEL_OF_VIBRATION)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()[CONTENT_TYPE], "text/csv");
    assert_eq!(
        csv.text().await.unwrap().replace('\r', ""),
        "label\nvibration\n"
    );
    let tsv = client
        .post(&sparql)
        .header(ACCEPT, "text/tab-separated-values")
        .form(&[("query", LABEL_OF_VIBRATION)])
        .send()
        .await
        .unwrap();
    assert_eq!(tsv.headers()[CONTENT_TYPE], "text/tab-separated-values");
    assert!(tsv.text().await.unwrap().contains("\"vibration\""));
    let xml = client
        .get(&sparql)
        .query(&[("query", "ASK { sensor:vibration a akg:Sensor }")])
        .header(ACCEPT, "text/csv;q=0.2, application/sparql-results+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(
        xml.headers()[CONTENT_TYPE],
        "application/sparql-results+xml"
    );
    assert!(xml.text().await.unwrap().contains("<boolean>"));

    // CONSTRUCT: N-Triples or Turtle, and 406 for a solutions format.
    let construct = "CONSTRUCT { sensor:vibration skos:prefLabel ?l } WHERE { sensor:vibration skos:prefLabel ?l }";
    let nt = client
        .get(&sparql)
        .query(&[("query", construct)])
        .header(ACCEPT, "application/n-triples")
        .send()
        .await
        .unwrap();
    assert_eq!(nt.headers()[CONTENT_TYPE], "application/n-triples");
    assert!(nt
        .text()
        .await
        .unwrap()
        .contains("<https://w3id.org/assetkg/kb/sensor/vibration>"));
    let turtle = client
        .get(&sparql)
        .query(&[("query", construct)])
        .send()
        .await
        .unwrap();
    assert_eq!(turtle.headers()[CONTENT_TYPE], "text/turtle");
    let refused = client
        .get(&sparql)
        .query(&[("query", construct)])
        .header(ACCEPT, "application/sparql-results+json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);

    // Updates: 401 without a token, 403 for a reader, the store unchanged; a curator's update
    // commits as one recorded transaction and is visible.
    let before = snapshot(&server.kb);
    let delete_all = "DELETE WHERE { ?s ?p ?o }";
    let anonymous = client
        .post(&sparql)
        .form(&[("update", delete_all)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let reader = client
        .post(&sparql)
        .header(AUTHORIZATION, format!("Bearer {}", tokens.reader))
        .header(CONTENT_TYPE, "application/sparql-update")
        .body(delete_all)
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), StatusCode::FORBIDDEN);
    // An update smuggled in as a query does not parse as one.
    let smuggled = client
        .get(&sparql)
        .query(&[("query", delete_all)])
        .send()
        .await
        .unwrap();
    assert_eq!(smuggled.status(), StatusCode::BAD_REQUEST);
    assert_eq!(snapshot(&server.kb), before);
    let insert = "INSERT DATA { sensor:vibration skos:altLabel \"shake level\"@en }";
    let curator = client
        .post(&sparql)
        .header(AUTHORIZATION, format!("Bearer {}", tokens.curator))
        .header(CONTENT_TYPE, "application/sparql-update")
        .body(insert)
        .send()
        .await
        .unwrap();
    assert_eq!(
        curator.status(),
        StatusCode::NO_CONTENT,
        "{}",
        curator.text().await.unwrap()
    );
    let rows = server
        .select(
            "SELECT ?g WHERE { GRAPH ?g { sensor:vibration skos:altLabel \"shake level\"@en } }",
        )
        .await;
    assert_eq!(rows.len(), 1);

    // Errors name the problem.
    let bad = client
        .get(&sparql)
        .query(&[("query", "SELECT WHERE {")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().starts_with("query syntax"));
    let missing = client.get(&sparql).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let wrong_type = client
        .post(&sparql)
        .header(CONTENT_TYPE, "text/plain")
        .body(LABEL_OF_VIBRATION)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Health, metrics, then a graceful stop.
    for path in ["healthz", "readyz"] {
        let r = client
            .get(format!("{}/{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let metrics = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("assetkg_requests_total{operation=\"sparql:query\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("operation=\"sparql:update\",outcome=\"client_error\""),
        "{metrics}"
    );
    assert!(!metrics.contains("assetkg_store_quads 0\n"));
    let url = server.url.clone();
    let client = client.clone();
    server.stop().await;
    assert!(client.get(format!("{url}/healthz")).send().await.is_err());
}

const ENTITY: &str = r#"query($iri: String!) {
  entity(iri: $iri) {
    __typename iri kind label definition altLabels
    ... on FailureMode {
      sensors { entity { iri label } vettingStatus provenance { graph title source vettingStatus } }
      failureModeClasses { entity { iri } }
    }
  }
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_entities_relations_both_ways_and_cursor_pagination() {
    let server = Server::start(ServiceConfig::default()).await;

    // A failure mode with its sensors, each relation with provenance.
    let data = server
        .data(None, ENTITY, json!({ "iri": "fm:bearing-wear" }))
        .await;
    let entity = &data["entity"];
    assert_eq!(entity["__typename"], "FailureMode");
    assert_eq!(entity["kind"], "failure_mode");
    let sensors = entity["sensors"].as_array().unwrap();
    let vibration = sensors
        .iter()
        .find(|s| s["entity"]["iri"] == "https://w3id.org/assetkg/kb/sensor/vibration")
        .expect("bearing wear is detectable by vibration");
    let provenance = vibration["provenance"].as_array().unwrap();
    assert!(!provenance.is_empty());
    assert!(provenance
        .iter()
        .all(|p| !p["title"].as_str().unwrap().is_empty()));
    assert!(["vetted", "proposed"].contains(&vibration["vettingStatus"].as_str().unwrap()));

    // The same fact read from the other end.
    let back = server
        .data(
            None,
            r#"{ entity(iri: "sensor:vibration") { ... on Sensor { failureModes { entity { iri } } } } }"#,
            json!({}),
        )
        .await;
    assert!(back["entity"]["failureModes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["entity"]["iri"] == "https://w3id.org/assetkg/kb/failure-mode/bearing-wear"));
    let unknown = server
        .data(None, ENTITY, json!({ "iri": "sensor:no-such-thing" }))
        .await;
    assert!(unknown["entity"].is_null());

    // Every sensor exactly once, page by page, in IRI order.
    let page = r#"query($after: String) {
      entities(kind: SENSOR, first: 7, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { cursor node { iri } }
      } }"#;
    let mut seen: Vec<String> = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = server.data(None, page, json!({ "after": after })).await;
        let connection = &data["entities"];
        for edge in connection["edges"].as_array().unwrap() {
            seen.push(edge["node"]["iri"].as_str().unwrap().to_owned());
        }
        if !connection["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are in order and never repeat");
    let count = server
        .select("SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a akg:Sensor }")
        .await;
    assert_eq!(
        seen.len().to_string(),
        count[0]["n"]["value"].as_str().unwrap()
    );

    // Filters: by label text, by asset.
    let filtered = server
        .data(
            None,
            r#"{ entities(kind: SENSOR, labelContains: "VIBRATION", first: 50) { edges { node { label altLabels } } } }"#,
            json!({}),
        )
        .await;
    let edges = filtered["entities"]["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    for edge in edges {
        let node = &edge["node"];
        let names = std::iter::once(&node["label"])
            .chain(node["altLabels"].as_array().unwrap())
            .map(|v| v.as_str().unwrap().to_lowercase())
            .collect::<Vec<_>>();
        assert!(names.iter().any(|n| n.contains("vibration")), "{node}");
    }
    let motor_sensors = server
        .data(
            None,
            r#"{ entities(kind: SENSOR, asset: "Electric Motor", first: 100) { edges { node { iri } } } }"#,
            json!({}),
        )
        .await;
    let motor: Vec<&str> = motor_sensors["entities"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["iri"].as_str().unwrap())
        .collect();
    assert!(!motor.is_empty() && motor.len() < seen.len());
    let bad = server
        .error_code(
            None,
            r#"{ entities(first: 0) { edges { cursor } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(bad, "BAD_REQUEST");
    server.stop().await;
}

const SEARCH: &str = r#"query($text: String!, $mode: Mode!, $kinds: [EntityKind!]!, $asset: String) {
  search(text: $text, mode: $mode, kinds: $kinds, asset: $asset, limit: 8) {
    score iri label kind text assets entity { __typename iri }
  } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_in_each_mode_with_filters_and_recommend_with_explanations() {
    let server = Server::start(ServiceConfig::default()).await;
    let motor = "https://w3id.org/assetkg/kb/class/electric-motor";
    for mode in ["VECTOR", "LEXICAL", "HYBRID"] {
        let data = server
            .data(
                None,
                SEARCH,
                json!({ "text": "bearing vibration", "mode": mode, "kinds": ["SENSOR"], "asset": "Electric Motor" }),
            )
            .await;
        let hits = data["search"].as_array().unwrap();
        assert!(!hits.is_empty(), "{mode}");
        for hit in hits {
            assert_eq!(hit["kind"], "sensor", "{mode}");
            assert_eq!(hit["entity"]["__typename"], "Sensor");
            assert!(
                hit["assets"].as_array().unwrap().iter().any(|a| a == motor),
                "{mode}: {hit}"
            );
        }
        let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{mode}: ranked");
    }
    let empty = server
        .error_code(
            None,
            SEARCH,
            json!({ "text": " ", "mode": "HYBRID", "kinds": [] }),
        )
        .await;
    assert_eq!(empty, "BAD_REQUEST");
    let no_asset = server
        .error_code(
            None,
            SEARCH,
            json!({ "text": "x", "mode": "HYBRID", "kinds": [], "asset": "warp drive" }),
        )
        .await;
    assert_eq!(no_asset, "NOT_FOUND");

    // FM2S: sensors for bearing wear on an electric motor.
    let data = server
        .data(
            None,
            r#"{ recommend(task: FM2S, query: "bearing wear", asset: "Electric Motor", limit: 25) {
                 task queryEntities { role resolvedBy entity { iri } }
                 items { score semanticScore graphLinked entity { iri label }
                   explanation { semanticOnly summary paths { facts { subject predicate object vettingStatus provenance { graph title } } } } } } }"#,
            json!({}),
        )
        .await;
    let recommendation = &data["recommend"];
    let fault = recommendation["queryEntities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["role"] == "Fault")
        .expect("the fault was resolved");
    // The motor's own failure mode is preferred: its matrix names it "bearing damage".
    let fault_iri = fault["entity"]["iri"].as_str().unwrap();
    assert_eq!(
        fault_iri,
        "https://w3id.org/assetkg/kb/failure-mode/bearing-damage"
    );
    assert_eq!(fault["resolvedBy"], "search");
    let items = recommendation["items"].as_array().unwrap();
    // Every sensor monitored on a motor (the asset filter), fewer than the limit.
    let motor_sensors = server
        .select("SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { cls:electric-motor akg:hasMonitoredProperty ?s }")
        .await;
    assert_eq!(
        items.len().to_string(),
        motor_sensors[0]["n"]["value"].as_str().unwrap()
    );
    let top = &items[0];
    assert_eq!(top["graphLinked"], true, "graph-linked items lead: {top}");
    let (explained, _) = check_explanations(items, &[fault_iri, motor]);
    assert!(explained > 0);

    // Without an asset, the sensors no fact links to the fault are semantic matches only.
    let data = server
        .data(
            None,
            r#"{ recommend(task: FM2S, query: "fm:bearing-wear", limit: 40) {
                 queryEntities { resolvedBy entity { iri } }
                 items { graphLinked entity { iri }
                   explanation { semanticOnly summary paths { facts { subject object provenance { graph } } } } } } }"#,
            json!({}),
        )
        .await;
    let recommendation = &data["recommend"];
    assert_eq!(recommendation["queryEntities"][0]["resolvedBy"], "iri");
    let wear = "https://w3id.org/assetkg/kb/failure-mode/bearing-wear";
    let items = recommendation["items"].as_array().unwrap();
    let (explained, semantic_only) = check_explanations(items, &[wear]);
    assert!(
        explained > 0 && semantic_only > 0,
        "{explained} explained, {semantic_only} semantic only"
    );
    let linked = items
        .iter()
        .take_while(|i| i["graphLinked"] == true)
        .count();
    assert!(
        items[linked..].iter().all(|i| i["graphLinked"] == false),
        "graph-linked items come first"
    );
    server.stop().await;
}

/// Checks each item's explanation: a path starts at one of `from` and ends at the item, every
/// fact has provenance; no path means "semantic match only". Returns (explained, semantic only).
fn check_explanations(items: &[Value], from: &[&str]) -> (usize, usize) {
    let mut explained = 0;
    let mut semantic_only = 0;
    for item in items {
        let explanation = &item["explanation"];
        let paths = explanation["paths"].as_array().unwrap();
        if explanation["semanticOnly"].as_bool().unwrap() {
            semantic_only += 1;
            assert!(paths.is_empty());
            assert_eq!(explanation["summary"], "semantic match only");
            continue;
        }
        explained += 1;
        assert!(!paths.is_empty());
        for path in paths {
            let facts = path["facts"].as_array().unwrap();
            let touches = |fact: &Value, iri: &str| fact["subject"] == iri || fact["object"] == iri;
            assert!(from.iter().any(|f| touches(&facts[0], f)), "{path}");
            let item_iri = item["entity"]["iri"].as_str().unwrap();
            assert!(touches(&facts[facts.len() - 1], item_iri), "{path}");
            for fact in facts {
                assert!(!fact["provenance"].as_array().unwrap().is_empty(), "{fact}");
            }
        }
    }
    (explained, semantic_only)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_limits_cors_and_errors() {
    let (mut service, tokens) = tokens_config(false);
    service.limits.graphql_depth = 4;
    service.limits.body_bytes = 4096;
    service.limits.sparql_max_results = 10;
    service.limits.sparql_timeout_s = 0.2;
    service.cors_origins = vec!["https://app.example".into()];
    let server = Server::start(service).await;
    let client = &server.client;
    let version = "{ kbVersion }";

    // Anonymous reading is off: 401 on GraphQL, SPARQL and metrics; health stays open.
    let (status, _) = server.graphql_as(None, version, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.graphql_as(Some("wrong"), version, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for path in ["sparql?query=ASK%7B%7D", "metrics"] {
        let r = client
            .get(format!("{}/{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
    assert_eq!(
        client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // A reader reads but cannot edit; a curator edits but cannot re-index; an admin can.
    let data = server.data(Some(&tokens.reader), version, json!({})).await;
    assert!(data["kbVersion"].as_str().unwrap().starts_with("sha256:"));
    let propose = r#"mutation { proposeRelation(fact: { subject: "fm:bearing-wear", predicate: "akg:detectableBy", object: "sensor:coast-down-time", reason: "rundown time shortens with bearing friction" }) { kbVersion } }"#;
    assert_eq!(
        server
            .error_code(Some(&tokens.reader), propose, json!({}))
            .await,
        "FORBIDDEN"
    );
    let reindex = "mutation { reindex }";
    assert_eq!(
        server
            .error_code(Some(&tokens.curator), reindex, json!({}))
            .await,
        "FORBIDDEN"
    );
    let data = server.data(Some(&tokens.admin), reindex, json!({})).await;
    assert_eq!(
        data["reindex"], 0,
        "nothing to re-embed: the index is in line"
    );

    // Limits: an over-deep query, an oversized body, a SPARQL result over the limit.
    let deep = r#"{ entity(iri: "fm:bearing-wear") { ... on FailureMode { sensors { entity { ... on Sensor { failureModes { entity { iri } } } } } } } }"#;
    let (_, body) = server
        .graphql_as(Some(&tokens.reader), deep, json!({}))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{body}"
    );
    let big = "x".repeat(10_000);
    let (status, _) = server
        .graphql_as(
            Some(&tokens.reader),
            &format!("{{ kbVersion }} # {big}"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let code = server
        .error_code(
            Some(&tokens.reader),
            r#"{ sparql(query: "SELECT ?s WHERE { ?s a akg:Sensor }") }"#,
            json!({}),
        )
        .await;
    assert_eq!(code, "TOO_MANY_RESULTS");
    let code = server
        .error_code(
            Some(&tokens.reader),
            r#"{ sparql(query: "SELECT WHERE {") }"#,
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_REQUEST");
    // A query over the square of the store (10⁹ pairs) is cancelled at the time limit.
    let square = r#"{ sparql(query: "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f }") }"#;
    let code = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        server.error_code(Some(&tokens.reader), square, json!({})),
    )
    .await
    .expect("the query was not cancelled");
    assert_eq!(code, "TIMEOUT");

    // CORS: the configured origin only.
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curation_is_visible_in_sparql_and_search_and_invalid_edits_change_nothing() {
    let (service, tokens) = tokens_config(true);
    let server = Server::start(service).await;
    let curator = Some(tokens.curator.as_str());
    let v0 = server.data(None, "{ kbVersion }", json!({})).await["kbVersion"].clone();

    // An invalid edit (definition shorter than the shapes allow) is refused with the shape's
    // message; the store, the version and the index stay as they were.
    let before = snapshot(&server.kb);
    let rows_before = server.services.index.len().await.unwrap();
    let add = r#"mutation($input: EntityInput!) { addEntity(input: $input) { kbVersion previousVersion graph added affected reembedded } }"#;
    let invalid = json!({ "input": {
        "iri": "sensor:oil-particle-count", "class": "akg:Sensor", "label": "oil particle count",
        "definition": "short", "reason": "test" } });
    let (_, body) = server.graphql_as(curator, add, invalid).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("definition"),
        "{body}"
    );
    assert_eq!(snapshot(&server.kb), before);
    assert_eq!(server.services.index.len().await.unwrap(), rows_before);
    assert_eq!(
        server.data(None, "{ kbVersion }", json!({})).await["kbVersion"],
        v0
    );

    // A new sensor: in SPARQL with its provenance, and in search.
    let definition = "The number of wear particles per millilitre of lubricating oil counted by an inline optical particle counter, whose rise reveals abrasive wear of bearings and gears.";
    let valid = json!({ "input": {
        "iri": "sensor:oil-particle-count", "class": "akg:Sensor", "label": "oil particle count",
        "definition": definition, "altLabels": ["ferrous debris count"],
        "reason": "added after the gearbox review" } });
    let added = server.data(curator, add, valid).await["addEntity"].clone();
    assert_ne!(added["kbVersion"], v0);
    assert_eq!(added["previousVersion"], v0);
    assert_eq!(
        added["reembedded"], 1,
        "only the new entity is embedded: {added}"
    );
    let iri = "https://w3id.org/assetkg/kb/sensor/oil-particle-count";
    let rows = server
        .select(&format!(
            "SELECT ?g ?status ?who WHERE {{ GRAPH ?g {{ <{iri}> a akg:Sensor }}
               ?g akg:vettingStatus ?status ; prov:wasAttributedTo ?who }}"
        ))
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["g"]["value"], added["graph"]);
    let search = server
        .data(
            None,
            SEARCH,
            json!({ "text": "ferrous debris count", "mode": "LEXICAL", "kinds": ["SENSOR"] }),
        )
        .await;
    assert_eq!(search["search"][0]["iri"], iri);

    // Its vector is the model's vector of its current text (no stale vector): searching with
    // the text itself finds it with cosine ~1.
    let text = search["search"][0]["text"].as_str().unwrap().to_owned();
    let vector = server
        .data(
            None,
            SEARCH,
            json!({ "text": text, "mode": "VECTOR", "kinds": ["SENSOR"] }),
        )
        .await;
    assert_eq!(vector["search"][0]["iri"], iri);
    assert!(vector["search"][0]["score"].as_f64().unwrap() > 0.999);

    // A proposed fact, then vetted: its provenance and status follow, and the entities whose
    // documents changed are re-embedded; afterwards the index matches the KB exactly.
    let fact = |reason: &str| {
        json!({ "fact": {
        "subject": "fm:bearing-wear", "predicate": "akg:detectableBy", "object": "sensor:oil-particle-count", "reason": reason } })
    };
    let proposed = server
        .data(
            curator,
            "mutation($fact: FactInput!) { proposeRelation(fact: $fact) { kbVersion affected } }",
            fact("particles come from wearing bearings"),
        )
        .await;
    assert!(proposed["proposeRelation"]["affected"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == iri));
    let relation = r#"{ entity(iri: "sensor:oil-particle-count") { ... on Sensor { failureModes { vettingStatus provenance { vettingStatus } entity { iri } } } } }"#;
    let read = server.data(None, relation, json!({})).await;
    assert_eq!(
        read["entity"]["failureModes"][0]["vettingStatus"],
        "proposed"
    );
    server
        .data(
            curator,
            "mutation($fact: FactInput!) { vetFact(fact: $fact) { kbVersion } }",
            fact("confirmed by the reliability team"),
        )
        .await;
    let read = server.data(None, relation, json!({})).await;
    assert_eq!(read["entity"]["failureModes"][0]["vettingStatus"], "vetted");
    let docs = entity_documents(&server.kb).unwrap();
    let resync = server
        .services
        .index
        .sync(&docs, &SharedModel, false)
        .await
        .unwrap();
    assert!(resync.is_noop(), "a stale row was left: {resync:?}");

    // The version log and a diff between the first and the last version.
    let versions = server
        .data(
            None,
            "{ kbVersions(last: 3) { sequence id agent action reason added removed } }",
            json!({}),
        )
        .await;
    let versions = versions["kbVersions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert!(versions.iter().all(|v| v["agent"] == "carl"));
    let first = versions[0]["id"].as_str().unwrap();
    let last = versions[2]["id"].as_str().unwrap();
    let diff = server
        .data(
            None,
            "query($a: String!, $b: String!) { kbDiff(from: $a, to: $b) }",
            json!({ "a": first, "b": last }),
        )
        .await;
    let patch = diff["kbDiff"].as_str().unwrap();
    assert!(
        patch.lines().any(|l| l.starts_with("A ")
            && l.contains("detectableBy")
            && l.contains("oil-particle-count")),
        "{patch}"
    );
    server.stop().await;
}

#[test]
fn the_checked_in_sdl_equals_the_schema() {
    let path = root().join("graphql/schema.graphql");
    let sdl = assetkg::api::graphql::sdl();
    if std::env::var_os("ASSETKG_UPDATE_SDL").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "graphql/schema.graphql differs from the schema in the code; run \
         `ASSETKG_UPDATE_SDL=1 cargo test --test integration the_checked_in_sdl` and review the diff"
    );
}
