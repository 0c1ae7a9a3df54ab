//! The HTTP service on a real socket (127.0.0.1:0) over the bundled KB: the SPARQL 1.1 Protocol
//! (GET, POST body, POST form), content negotiation for every result format, the read-only
//! guarantee, errors, health checks and graceful shutdown.

use crate::common::config;
use assetkg::kb::KnowledgeBase;
use assetkg::server::{serve, AppState};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use std::sync::Arc;

/// A server over a fresh in-memory copy of the bundled KB; returns its base URL, the KB and a
/// sender that shuts it down, and the server task.
async fn start() -> (
    String,
    Arc<KnowledgeBase>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let config = config();
    let kb = KnowledgeBase::in_memory(&config.shapes_file()).expect("shapes compile");
    kb.load_files(&config.bundled_files().expect("kb dir"))
        .expect("bundled KB loads");
    let kb = Arc::new(kb);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState { kb: kb.clone() };
    let task = tokio::spawn(serve(state, listener, async {
        let _ = stopped.await;
    }));
    (url, kb, stop, task)
}

const LABEL_OF_VIBRATION: &str = "SELECT ?label WHERE { sensor:vibration skos:prefLabel ?label }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparql_protocol_formats_read_only_errors_health_and_shutdown() {
    let (url, kb, stop, task) = start().await;
    let client = reqwest::Client::new();
    let sparql = format!("{url}/sparql");

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
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["head"]["vars"][0], "label");
    assert_eq!(
        json["results"]["bindings"][0]["label"]["value"],
        "vibration"
    );

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

    // Read-only: updates are refused and the store is unchanged.
    let before = kb.store().len().unwrap();
    let delete_all = "DELETE WHERE { ?s ?p ?o }";
    let form_update = client
        .post(&sparql)
        .form(&[("update", delete_all)])
        .send()
        .await
        .unwrap();
    assert_eq!(form_update.status(), StatusCode::FORBIDDEN);
    let body_update = client
        .post(&sparql)
        .header(CONTENT_TYPE, "application/sparql-update")
        .body(delete_all)
        .send()
        .await
        .unwrap();
    assert_eq!(body_update.status(), StatusCode::FORBIDDEN);
    // An update smuggled in as a query does not parse as one.
    let smuggled = client
        .get(&sparql)
        .query(&[("query", delete_all)])
        .send()
        .await
        .unwrap();
    assert_eq!(smuggled.status(), StatusCode::BAD_REQUEST);
    assert_eq!(kb.store().len().unwrap(), before);

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

    // Health, then a graceful stop.
    for path in ["healthz", "readyz"] {
        let r = client.get(format!("{url}/{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    stop.send(()).unwrap();
    task.await.unwrap().expect("server stops cleanly");
    assert!(client.get(format!("{url}/healthz")).send().await.is_err());
}
