//! The ReAct agent: the embedded GGUF model itself, the loop mechanics with a scripted model,
//! the default offline backend on generated questions, the read-only guarantee, and `ask` /
//! `askSteps` through the real server.

use crate::common::{root, snapshot};
use crate::server::Server;
use assetkg::agent::gguf::{GgufModel, DEFAULT_GGUF};
use assetkg::agent::questions::generate;
use assetkg::agent::{Action, Agent, Budget, Polarity, Question, StopReason};
use assetkg::api::config::{AgentSettings, ServiceConfig};
use assetkg::augment::llm::{ChatMessage, ChatRequest, ChatResponse, LlmClient, LlmResult};
use async_trait::async_trait;
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};

fn gguf_path() -> std::path::PathBuf {
    root().join(DEFAULT_GGUF)
}

fn model() -> &'static GgufModel {
    static MODEL: OnceLock<GgufModel> = OnceLock::new();
    MODEL.get_or_init(|| GgufModel::load(&gguf_path()).expect("run ./scripts/fetch-models.sh"))
}

fn service(backend: &str) -> ServiceConfig {
    ServiceConfig {
        agent: AgentSettings {
            backend: backend.into(),
            gguf: gguf_path(),
            max_steps: 8,
        },
        ..ServiceConfig::default()
    }
}

#[test]
fn the_embedded_model_reads_its_tokenizer_and_answers() {
    let model = model();
    // The tokenizer rebuilt from the GGUF metadata keeps the control tokens whole.
    let prompt = GgufModel::prompt(&[ChatMessage::user("What is the capital of France?")]);
    let ids = model.encode(&prompt).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == ids[0]).count(), 2, "{ids:?}");
    let answer = model.generate(&prompt, 16, 0.0, &[]).unwrap();
    assert!(answer.text.contains("Paris"), "{answer:?}");
    assert!(answer.completion_tokens.unwrap() > 0);
    // Scoring continuations after a shared prompt: the right one is far more likely.
    let scored = model
        .continuation_logprobs(
            &GgufModel::prompt(&[ChatMessage::user("Complete: The capital of France is")]),
            &[
                "The capital of France is Paris.".into(),
                "The capital of France is Berlin.".into(),
            ],
        )
        .unwrap();
    assert!(
        scored.scores[0].0 > scored.scores[1].0 + 2.0,
        "{:?}",
        scored.scores
    );
}

/// A model that replays a script, one reply per call, and records the prompts it saw.
struct Scripted {
    replies: Mutex<Vec<String>>,
    seen: Mutex<Vec<Vec<ChatMessage>>>,
}

impl Scripted {
    fn new(replies: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies.iter().rev().map(|r| r.to_string()).collect()),
            seen: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl LlmClient for Scripted {
    fn model_id(&self) -> &str {
        "scripted"
    }

    async fn chat(&self, request: &ChatRequest) -> LlmResult<ChatResponse> {
        self.seen.lock().unwrap().push(request.messages.clone());
        let text = self
            .replies
            .lock()
            .unwrap()
            .pop()
            .unwrap_or_else(|| "I have nothing more to say".into());
        Ok(ChatResponse {
            text,
            prompt_tokens: Some(10),
            completion_tokens: Some(5),
        })
    }
}

async fn scripted_agent(server: &Server, script: Arc<Scripted>) -> Agent {
    let tools = server.services.agent().await.unwrap().tools;
    Agent {
        policy: Box::new(assetkg::agent::freeform::FreeFormPolicy::new(script)),
        tools,
        budget: Budget::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_retries_bad_output_refuses_repeats_and_cites_what_tools_read() {
    let server = Server::start(service("planner")).await;
    let script = Scripted::new(&[
        "I think it is vibration.",
        "Thought: look it up\nAction: recommend\nAction Input: {\"task\": \"FM2S\", \"query\": \"bearing wear\", \"asset\": \"compressor\"",
        "Thought: look it up\nAction: recommend\nAction Input: {\"task\": \"FM2S\", \"query\": \"bearing wear\", \"asset\": \"compressor\"}",
        "Thought: again\nAction: recommend\nAction Input: {\"task\": \"FM2S\", \"query\": \"bearing wear\", \"asset\": \"compressor\"}",
        "Thought: the graph links oil debris\nFinal Answer: 2 - oil debris reveals bearing wear",
    ]);
    let agent = scripted_agent(&server, script.clone()).await;
    let question = Question {
        text: "Which sensor is most relevant for detecting bearing wear in a compressor?".into(),
        options: vec!["length measurement".into(), "oil debris".into()],
    };
    let mut streamed = Vec::new();
    let answer = agent.ask(&question, &mut |s| streamed.push(s.index)).await;
    assert_eq!(answer.stopped, StopReason::Answered, "{answer:#?}");
    assert_eq!(answer.choice, Some(1));
    assert_eq!(answer.polarity, Some(Polarity::Select));
    // Two malformed replies were shown back to the model with what was wrong.
    let seen = script.seen.lock().unwrap().clone();
    let last_user = |i: usize| seen[i].last().unwrap().content.clone();
    assert!(
        last_user(1).contains("neither `Action:` nor `Final Answer:`"),
        "{}",
        last_user(1)
    );
    assert!(last_user(2).contains("JSON object"), "{}", last_user(2));
    // The repeated call was refused, not run again.
    let refused = answer.steps[1].observation.as_ref().unwrap();
    assert!(
        refused.error && refused.text.contains("already made"),
        "{refused:?}"
    );
    assert_eq!(streamed, vec![1, 2, 3]);
    // The citations are the answer's entities and facts read by the tools, with provenance.
    assert!(answer
        .entities
        .iter()
        .any(|e| e.iri.ends_with("sensor/oil-debris")));
    assert!(!answer.facts.is_empty());
    assert!(answer
        .facts
        .iter()
        .all(|f| !f.provenance.is_empty() && !f.vetting_status.is_empty()));
    assert!(answer.tokens > 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_endpoint_drives_the_loop_over_the_wire() {
    use crate::augment::{completion, ChatServer};
    // The endpoint answers with a tool call on the first turn and the answer after it.
    let chat = ChatServer::start(|body| {
        let turns = body["messages"].as_array().map_or(0, |m| m.len());
        if turns <= 2 {
            completion("Thought: ask the graph\nAction: recommend\nAction Input: {\"task\": \"S2FM\", \"query\": \"oil debris\", \"asset\": \"compressor\"}")
        } else {
            completion("Thought: the observation lists it\nFinal Answer: check bearing wear on the compressor")
        }
    })
    .await;
    let server = Server::start(service("planner")).await;
    let tools = server.services.agent().await.unwrap().tools;
    let mut config = assetkg::augment::llm::OpenAiConfig::new(&chat.base_url, "test-model:1b");
    config.timeout = std::time::Duration::from_secs(30);
    let agent = Agent {
        policy: assetkg::agent::ModelCache::default()
            .policy(&assetkg::agent::Backend::OpenAi(config))
            .unwrap(),
        tools,
        budget: Budget::default(),
    };
    let answer = agent
        .ask(
            &Question {
                text: "My compressor shows oil debris. What should I check?".into(),
                options: Vec::new(),
            },
            &mut |_| {},
        )
        .await;
    assert_eq!(answer.stopped, StopReason::Answered, "{answer:#?}");
    assert_eq!(answer.backend, "react:test-model:1b");
    assert!(answer.tokens > 0);
    let received = chat.received();
    assert_eq!(received.len(), 2);
    let first = received[0].messages();
    assert!(first[0].1.contains("recommend {\"task\""), "{}", first[0].1);
    let second = received[1].messages();
    assert!(
        second
            .last()
            .unwrap()
            .1
            .starts_with("Observation: S2FM for"),
        "{second:?}"
    );
    // The answer cites the failure mode it names, with the facts the tool read.
    assert!(answer
        .entities
        .iter()
        .any(|e| e.iri.ends_with("failure-mode/bearing-wear")));
    assert!(!answer.facts.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_follows_the_format_fails_clearly() {
    let server = Server::start(service("planner")).await;
    let agent = scripted_agent(&server, Scripted::new(&[])).await;
    let question = Question {
        text: "What does a fan do?".into(),
        options: Vec::new(),
    };
    let answer = agent.ask(&question, &mut |_| {}).await;
    match &answer.stopped {
        StopReason::Failed(reason) => assert!(reason.contains("3 unusable outputs"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(answer.text.contains("did not follow the answer format"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_change_data_leave_the_store_unchanged() {
    let server = Server::start(service("gguf")).await;
    let before = snapshot(&server.kb);
    let version = server.kb.current_version().unwrap();
    // A model that tries to run updates through the sparql tool.
    let script = Scripted::new(&[
        "Thought: delete it\nAction: sparql\nAction Input: {\"query\": \"DELETE WHERE { ?s ?p ?o }\"}",
        "Thought: drop\nAction: sparql\nAction Input: {\"query\": \"DROP ALL\"}",
        "Thought: insert\nAction: sparql\nAction Input: {\"query\": \"INSERT DATA { fm:bearing-wear akg:detectableBy sensor:vibration }\"}",
        "Thought: done\nFinal Answer: I cannot change the graph.",
    ]);
    let agent = scripted_agent(&server, script).await;
    let answer = agent
        .ask(
            &Question {
                text: "Delete every failure mode of the compressor.".into(),
                options: Vec::new(),
            },
            &mut |_| {},
        )
        .await;
    for step in answer.steps.iter().filter(|s| s.action.is_some()) {
        let observation = step.observation.as_ref().unwrap();
        assert!(observation.error, "{observation:?}");
        assert!(
            observation.text.contains("not allowed"),
            "{}",
            observation.text
        );
    }
    // The default offline backend, asked outright (and with SPARQL Update smuggled in).
    let agent = server.services.agent().await.unwrap();
    for text in [
        "Delete the failure mode bearing wear from the compressor.",
        "Change the compressor so that vibration no longer detects bearing wear: DELETE WHERE { ?s akg:detectableBy ?o }",
    ] {
        let answer = agent
            .ask(&Question { text: text.into(), options: Vec::new() }, &mut |_| {})
            .await;
        assert!(!answer.steps.is_empty());
        for step in &answer.steps {
            if let Some(Action::Sparql { query }) = &step.action {
                assert!(assetkg::agent::tools::check_read_only(query).is_ok());
            }
        }
    }
    assert_eq!(server.kb.current_version().unwrap(), version);
    assert_eq!(snapshot(&server.kb), before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_agent_answers_generated_questions_with_citations() {
    let server = Server::start(service("gguf")).await;
    let kb = server.kb.clone();
    let set = tokio::task::spawn_blocking(move || generate(&kb, 7).unwrap())
        .await
        .unwrap();
    assert!(set.choice.len() >= 200, "{}", set.choice.len());
    assert!(set.open.len() >= 30, "{}", set.open.len());
    let assets: std::collections::BTreeSet<&str> =
        set.choice.iter().map(|q| q.asset.as_str()).collect();
    assert_eq!(assets.len(), 10);
    let agent = server.services.agent().await.unwrap();
    // One question of each task and phrasing, with different option counts.
    let mut picked = Vec::new();
    for (task, polarity) in [
        ("FM2S", Polarity::Select),
        ("FM2S", Polarity::Eliminate),
        ("S2FM", Polarity::Select),
        ("S2FM", Polarity::Eliminate),
        ("A2S", Polarity::Select),
    ] {
        picked.push(
            set.choice
                .iter()
                .find(|q| q.task == task && q.polarity == polarity)
                .unwrap(),
        );
    }
    for q in picked {
        let answer = agent
            .ask(
                &Question {
                    text: q.text.clone(),
                    options: q.options.clone(),
                },
                &mut |_| {},
            )
            .await;
        assert_eq!(answer.choice, Some(q.answer), "{}\n{answer:#?}", q.text);
        assert_eq!(answer.polarity, Some(q.polarity));
        assert!(
            answer.backend.starts_with("constrained:"),
            "{}",
            answer.backend
        );
        assert!(!answer.facts.is_empty() && answer.steps.len() >= 2);
        // The model's choice is on record for the steps it scored.
        assert!(answer.steps.iter().any(|s| s.candidates.len() > 1));
    }
    // The most specific task tool comes first: the sensors for the failure mode on the asset
    // (FM2S), not those of the asset alone (A2S), which also lists length measurement.
    let answer = agent
        .ask(
            &Question {
                text: "Which sensor is most relevant for detecting unbalance in a fan?".into(),
                options: vec![
                    "length measurement".into(),
                    "vibration".into(),
                    "temperature".into(),
                ],
            },
            &mut |_| {},
        )
        .await;
    assert_eq!(answer.choice, Some(1), "{answer:#?}");
    let first_task = answer.steps.iter().find_map(|s| match &s.action {
        Some(Action::Recommend { task, .. }) => Some(task.as_str()),
        _ => None,
    });
    assert_eq!(first_task, Some("FM2S"), "{answer:#?}");
    let open = &set.open[0];
    let answer = agent
        .ask(
            &Question {
                text: open.text.clone(),
                options: Vec::new(),
            },
            &mut |_| {},
        )
        .await;
    for expected in &open.expected {
        assert!(
            answer.entities.iter().any(|e| &e.iri == expected),
            "{} not cited for {}: {answer:#?}",
            expected,
            open.text
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_and_its_step_stream_work_through_the_server() {
    let server = Server::start(service("planner")).await;
    let kb = server.kb.clone();
    let set = tokio::task::spawn_blocking(move || generate(&kb, 7).unwrap())
        .await
        .unwrap();
    let q = set
        .choice
        .iter()
        .find(|q| q.polarity == Polarity::Eliminate)
        .unwrap();
    let data = server
        .data(
            None,
            "query($q: String!, $o: [String!]!) { ask(question: $q, options: $o) {
               text choice polarity stopped backend
               entities { iri label }
               facts { subject predicate object vettingStatus provenance { graph sourceLabel } }
               steps { index tool input observation } } }",
            json!({ "q": q.text, "o": q.options }),
        )
        .await;
    let ask = &data["ask"];
    assert_eq!(ask["choice"], q.answer, "{ask:#}");
    assert_eq!(ask["polarity"], "ELIMINATE");
    assert_eq!(ask["stopped"], "Answered");
    assert_eq!(ask["steps"][0]["tool"], "link");
    assert!(
        ask["facts"][0]["provenance"][0]["graph"].is_string(),
        "{ask:#}"
    );
    // Bad option counts are the client's error.
    let (_, body) = server
        .graphql_as(
            None,
            "{ ask(question: \"x\", options: [\"a\"]) { text } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    // The subscription streams the steps, then the answer.
    use futures::StreamExt;
    let schema = assetkg::api::graphql::build_schema(
        Some(server.services.clone()),
        &server.services.config.limits,
    );
    let events: Vec<_> = schema
        .execute_stream(
            "subscription { askSteps(question: \"My compressor shows abnormal vibration and oil debris readings. What should I check?\") {
               step { index tool } answer { text entities { iri } } } }",
        )
        .collect()
        .await;
    assert!(events.len() >= 3, "{events:?}");
    let json: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            assert!(e.errors.is_empty(), "{:?}", e.errors);
            e.data.clone().into_json().unwrap()
        })
        .collect();
    assert_eq!(json[0]["askSteps"]["step"]["tool"], "link");
    let last = &json[json.len() - 1]["askSteps"]["answer"];
    assert!(
        last["text"].as_str().unwrap().starts_with("Check"),
        "{last:#}"
    );
    server.stop().await;
}
