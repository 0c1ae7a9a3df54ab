//! Chat LLM clients behind one backend-neutral trait, [`LlmClient`]: a list of messages in, one
//! text out. [`OpenAiClient`] speaks the OpenAI chat-completions wire format, which Ollama, vLLM,
//! the llama.cpp server and the hosted APIs all accept; a local in-process backend implements the
//! same trait. Tests drive the real client against a local HTTP server.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The user's turn (our prompts).
    User,
    /// The model's turn (earlier answers, when a request is retried).
    Assistant,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
}

/// What to ask a chat model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature (0 = as deterministic as the backend allows).
    pub temperature: f32,
    /// Strings that end generation when produced.
    pub stop: Vec<String>,
}

impl ChatRequest {
    /// A request with `messages`, 256 tokens, temperature 0 and no stop strings.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            max_tokens: 256,
            temperature: 0.0,
            stop: Vec::new(),
        }
    }
}

/// What a chat model answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatResponse {
    /// The generated text.
    pub text: String,
    /// Tokens of the prompt, when the backend reports them.
    pub prompt_tokens: Option<u32>,
    /// Tokens generated, when the backend reports them.
    pub completion_tokens: Option<u32>,
}

/// An error of a chat backend. Messages name the endpoint; they never carry an API key.
#[derive(Debug, Error)]
pub enum LlmError {
    /// A required environment variable is not set (or not unicode).
    #[error("environment variable {name} is not set: {hint}")]
    MissingEnv {
        name: &'static str,
        hint: &'static str,
    },
    /// The configuration is unusable (e.g. a malformed base URL).
    #[error("llm configuration: {0}")]
    Config(String),
    /// The server could not be reached, or the connection broke or timed out.
    #[error("cannot reach the llm server at {url}: {message}")]
    Connect { url: String, message: String },
    /// The server answered with a non-success status.
    #[error("llm server at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        /// The first 200 characters of the response body.
        body: String,
    },
    /// The server answered 2xx, but not with a chat completion we can read.
    #[error("llm server at {url} sent an unusable response: {message}")]
    Protocol { url: String, message: String },
    /// A backend-specific failure (local models and other non-HTTP backends).
    #[error("llm backend {backend}: {message}")]
    Backend { backend: String, message: String },
}

/// Result alias of the LLM clients.
pub type LlmResult<T> = Result<T, LlmError>;

/// A chat model. Backend-neutral: HTTP servers and in-process models implement it alike.
#[async_trait]
pub trait LlmClient: Send + Sync {
    /// The model's identifier as recorded in provenance (e.g. `qwen2.5:0.5b-instruct`).
    fn model_id(&self) -> &str;

    /// Sends `request` and returns the model's answer.
    async fn chat(&self, request: &ChatRequest) -> LlmResult<ChatResponse>;
}

/// Where an OpenAI-compatible chat-completions endpoint is and how to call it.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The API root, ending before `/chat/completions`, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The model name the server knows.
    pub model: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<String>,
    /// Limit on one whole request (connect, generate, read).
    pub timeout: Duration,
}

impl std::fmt::Debug for OpenAiConfig {
    // Hand-written so that a logged config never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Environment variable naming the API root.
pub const ENV_BASE_URL: &str = "ASSETKG_LLM_BASE_URL";
/// Environment variable naming the model.
pub const ENV_MODEL: &str = "ASSETKG_LLM_MODEL";
/// Environment variable holding the (optional) API key.
pub const ENV_API_KEY: &str = "ASSETKG_LLM_API_KEY";

/// Default time limit of one request: small local models on two cores are slow.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl OpenAiConfig {
    /// A config for `base_url` and `model`, without a key, with [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Reads [`ENV_BASE_URL`], [`ENV_MODEL`] and the optional [`ENV_API_KEY`].
    pub fn from_env() -> LlmResult<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`] with variables read through `lookup` (testable without touching
    /// the process environment). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> LlmResult<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let base_url = get(ENV_BASE_URL).ok_or(LlmError::MissingEnv {
            name: ENV_BASE_URL,
            hint: "the OpenAI-compatible API root, e.g. http://127.0.0.1:11434/v1 for Ollama",
        })?;
        let model = get(ENV_MODEL).ok_or(LlmError::MissingEnv {
            name: ENV_MODEL,
            hint: "the model name the server knows, e.g. qwen2.5:0.5b-instruct",
        })?;
        Ok(Self {
            base_url: base_url.trim().to_owned(),
            model: model.trim().to_owned(),
            api_key: get(ENV_API_KEY).map(|k| k.trim().to_owned()),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The URL requests are POSTed to.
    pub fn completions_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// A client of an OpenAI-compatible `POST {base_url}/chat/completions` endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    config: OpenAiConfig,
    url: String,
    http: reqwest::Client,
}

impl OpenAiClient {
    /// A client for `config`; checks the URL but does not contact the server.
    pub fn new(config: OpenAiConfig) -> LlmResult<Self> {
        let url = config.completions_url();
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| LlmError::Config(format!("bad base url {:?}: {e}", config.base_url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "bad base url {:?}: the scheme must be http or https",
                config.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build the http client: {e}")))?;
        Ok(Self { config, url, http })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The chat-completions URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    max_tokens: u32,
    temperature: f32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    stream: bool,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

/// The first `max` characters of `text` (on a character boundary).
fn head(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// A transport error as text, with its causes, because reqwest's top-level message alone
/// ("error sending request") does not say what went wrong.
fn describe_reqwest(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    // reqwest puts the URL in its own message; ours already names it.
    message.replace(
        &format!(
            " for url ({})",
            error.url().map(|u| u.as_str()).unwrap_or("")
        ),
        "",
    )
}

#[async_trait]
impl LlmClient for OpenAiClient {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    async fn chat(&self, request: &ChatRequest) -> LlmResult<ChatResponse> {
        let body = WireRequest {
            model: &self.config.model,
            messages: &request.messages,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            stop: &request.stop,
            stream: false,
        };
        let mut call = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key);
        }
        tracing::debug!(url = %self.url, model = %self.config.model, messages = request.messages.len(), "chat request");
        let response = call.send().await.map_err(|e| LlmError::Connect {
            url: self.url.clone(),
            message: describe_reqwest(&e),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| LlmError::Connect {
            url: self.url.clone(),
            message: describe_reqwest(&e),
        })?;
        if !status.is_success() {
            return Err(LlmError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                body: head(text.trim(), 200),
            });
        }
        let wire: WireResponse = serde_json::from_str(&text).map_err(|e| LlmError::Protocol {
            url: self.url.clone(),
            message: format!("not a chat completion ({e}): {}", head(text.trim(), 200)),
        })?;
        let content = wire
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message)
            .and_then(|m| m.content)
            .ok_or_else(|| LlmError::Protocol {
                url: self.url.clone(),
                message: "no choices[0].message.content in the response".to_owned(),
            })?;
        let usage = wire.usage;
        Ok(ChatResponse {
            text: content,
            prompt_tokens: usage.as_ref().and_then(|u| u.prompt_tokens),
            completion_tokens: usage.as_ref().and_then(|u| u.completion_tokens),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn config_from_env_names_the_missing_variable() {
        let err = OpenAiConfig::from_lookup(lookup(&[])).expect_err("missing");
        assert!(err.to_string().contains(ENV_BASE_URL), "{err}");
        let err = OpenAiConfig::from_lookup(lookup(&[(ENV_BASE_URL, "http://x/v1")]))
            .expect_err("missing model");
        assert!(err.to_string().contains(ENV_MODEL), "{err}");
        let config = OpenAiConfig::from_lookup(lookup(&[
            (ENV_BASE_URL, "http://127.0.0.1:11434/v1/"),
            (ENV_MODEL, "m"),
            (ENV_API_KEY, ""),
        ]))
        .expect("config");
        assert_eq!(config.api_key, None, "an empty key counts as unset");
        assert_eq!(
            config.completions_url(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        let mut config = OpenAiConfig::new("http://x/v1", "m");
        config.api_key = Some("sk-very-secret".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("<set>"));
    }

    #[test]
    fn a_bad_base_url_is_refused() {
        let err = OpenAiClient::new(OpenAiConfig::new("not a url", "m")).expect_err("bad");
        assert!(err.to_string().contains("not a url"), "{err}");
        let err = OpenAiClient::new(OpenAiConfig::new("ftp://host/v1", "m")).expect_err("bad");
        assert!(err.to_string().contains("http or https"), "{err}");
    }

    #[test]
    fn head_cuts_on_characters() {
        assert_eq!(head("abc", 5), "abc");
        assert_eq!(head("ääää", 2), "ää…");
    }

    #[test]
    fn the_wire_request_has_the_openai_shape() {
        let messages = vec![ChatMessage::system("s"), ChatMessage::user("u")];
        let body = WireRequest {
            model: "m",
            messages: &messages,
            max_tokens: 7,
            temperature: 0.0,
            stop: &[],
            stream: false,
        };
        let json = serde_json::to_value(&body).expect("json");
        assert_eq!(json["messages"][0]["role"], "system");
        assert_eq!(json["messages"][1]["content"], "u");
        assert_eq!(json["max_tokens"], 7);
        assert!(json.get("stop").is_none());
    }
}
