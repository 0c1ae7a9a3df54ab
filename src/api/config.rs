//! Service configuration: who may do what (bearer tokens with roles, stored as SHA-256 digests),
//! whether anonymous clients may read, the limits every request runs under, and CORS. Read from
//! a TOML file (`assetkg serve --service-config FILE`); without one, anonymous reading is on, no
//! token exists (so nobody can write) and the limits below apply.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// What a caller may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries, search, recommendation, SPARQL queries.
    Reader,
    /// Also curation edits and SPARQL updates.
    Curator,
    /// Also service operations (a full re-index).
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Curator => "curator",
            Role::Admin => "admin",
        })
    }
}

/// One configured token: a name (recorded as the agent of its edits), a role and the SHA-256
/// (hex) of the secret. The secret itself is never stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it (a person or an application).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the token, 64 hex digits (`assetkg token` prints one).
    pub sha256: String,
}

/// Limits of every request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Deepest GraphQL selection accepted.
    pub graphql_depth: usize,
    /// Highest GraphQL complexity (fields, with list sizes) accepted.
    pub graphql_complexity: usize,
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Time limit of a request, in seconds.
    pub request_timeout_s: f64,
    /// Time limit of a SPARQL query, in seconds.
    pub sparql_timeout_s: f64,
    /// Most rows or triples a SPARQL query may return.
    pub sparql_max_results: usize,
    /// Most items a search or recommendation may return.
    pub max_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            graphql_depth: 16,
            graphql_complexity: 5_000,
            body_bytes: 1 << 20,
            request_timeout_s: 30.0,
            sparql_timeout_s: 10.0,
            sparql_max_results: 100_000,
            max_limit: 100,
        }
    }
}

impl Limits {
    /// The request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_s)
    }

    /// The SPARQL time limit.
    pub fn sparql_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.sparql_timeout_s)
    }
}

/// The whole service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// May clients without a token read (query, search, SPARQL queries)?
    pub anonymous_read: bool,
    /// Origins allowed by CORS: `["*"]` for any, empty for none (same-origin only).
    pub cors_origins: Vec<String>,
    /// Request limits.
    pub limits: Limits,
    /// The tokens.
    pub tokens: Vec<TokenEntry>,
    /// The agent behind `ask`.
    pub agent: AgentSettings,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            anonymous_read: true,
            cors_origins: vec!["*".into()],
            limits: Limits::default(),
            tokens: Vec::new(),
            agent: AgentSettings::default(),
        }
    }
}

/// Which model drives the agent of `ask` (loaded on the first question).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// `gguf` (the embedded model choosing among planned actions; default), `gguf-react`,
    /// `planner` (no model) or `openai` (an OpenAI-compatible endpoint from the
    /// `ASSETKG_LLM_BASE_URL`, `ASSETKG_LLM_MODEL`, `ASSETKG_LLM_API_KEY` environment).
    pub backend: String,
    /// The GGUF model file.
    pub gguf: PathBuf,
    /// Most tool steps per question.
    pub max_steps: usize,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            backend: "gguf".into(),
            gguf: PathBuf::from(crate::agent::gguf::DEFAULT_GGUF),
            max_steps: 8,
        }
    }
}

impl AgentSettings {
    /// The agent backend these settings name.
    pub fn backend(&self) -> Result<crate::agent::Backend, String> {
        use crate::agent::Backend;
        match self.backend.as_str() {
            "gguf" => Ok(Backend::Gguf(self.gguf.clone())),
            "gguf-react" => Ok(Backend::GgufFreeForm(self.gguf.clone())),
            "planner" => Ok(Backend::Planner),
            "openai" => crate::augment::llm::OpenAiConfig::from_env()
                .map(Backend::OpenAi)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "agent.backend `{other}` is not one of gguf, gguf-react, planner, openai"
            )),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, Error)]
pub enum ServiceConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is wrong.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ServiceConfig {
    /// Reads and checks `path`.
    pub fn from_file(path: &Path) -> Result<Self, ServiceConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServiceConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ServiceConfigError::Parse { message, .. } => ServiceConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            ServiceConfigError::Invalid { message, .. } => ServiceConfigError::Invalid {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ServiceConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ServiceConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ServiceConfigError> {
        let invalid = |message: String| ServiceConfigError::Invalid {
            path: PathBuf::new(),
            message,
        };
        for (i, token) in self.tokens.iter().enumerate() {
            let hex_ok =
                token.sha256.len() == 64 && token.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex_ok {
                return Err(invalid(format!(
                    "tokens[{i}] ({}): sha256 must be 64 hex digits (the SHA-256 of the token, \
                     not the token itself)",
                    token.name
                )));
            }
            if token.name.trim().is_empty() {
                return Err(invalid(format!("tokens[{i}]: name is empty")));
            }
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.request_timeout_s", l.request_timeout_s),
            ("limits.sparql_timeout_s", l.sparql_timeout_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(format!(
                    "{name} must be a positive number of seconds"
                )));
            }
        }
        for (name, value) in [
            ("limits.graphql_depth", l.graphql_depth),
            ("limits.graphql_complexity", l.graphql_complexity),
            ("limits.body_bytes", l.body_bytes),
            ("limits.sparql_max_results", l.sparql_max_results),
            ("limits.max_limit", l.max_limit),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be positive")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let err = ServiceConfig::from_toml(
            "[[tokens]]\nname = \"alice\"\nrole = \"curator\"\nsha256 = \"secret\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("tokens[0] (alice)"), "{err}");
        let err = ServiceConfig::from_toml("[limits]\nsparql_timeout_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.sparql_timeout_s"), "{err}");
        let err = ServiceConfig::from_toml("anonymous = false\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("anonymous"), "{err}");
        let example = ServiceConfig::from_toml(include_str!("../../docs/service.example.toml"))
            .expect("the documented example parses");
        assert_eq!(example.tokens[0].role, Role::Curator);
        let ok = ServiceConfig::from_toml("anonymous_read = false\n").unwrap();
        assert!(!ok.anonymous_read);
        assert_eq!(ok.limits.graphql_depth, Limits::default().graphql_depth);
    }
}
