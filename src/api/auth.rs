//! Bearer-token authentication. A token is checked by its SHA-256 digest against the configured
//! digests in constant time, and the caller ([`Principal`]) is attached to the request for the
//! handlers to authorise each operation by role. No token: an anonymous reader when anonymous
//! reading is on, else 401. A wrong token is always 401.

use super::config::{Role, ServiceConfig};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name, or `anonymous`.
    pub name: String,
    /// What it may do; `None` for an anonymous caller (who may read when that is allowed).
    pub role: Option<Role>,
}

impl Principal {
    /// The anonymous caller.
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            role: None,
        }
    }

    /// True when the caller has at least `role`.
    pub fn has(&self, role: Role) -> bool {
        self.role.is_some_and(|r| r >= role)
    }
}

/// The digests of the configured tokens.
#[derive(Debug, Clone)]
pub struct TokenTable {
    entries: Vec<([u8; 32], String, Role)>,
    anonymous_read: bool,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token and anonymous reading is off.
    Missing,
    /// The Authorization header is not `Bearer <token>`.
    Malformed,
    /// No configured token has this digest.
    Unknown,
}

impl TokenTable {
    /// The table of `config`'s tokens (checked hex digests; see [`ServiceConfig::from_toml`]).
    pub fn new(config: &ServiceConfig) -> Self {
        let entries = config
            .tokens
            .iter()
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                let digest: [u8; 32] = bytes.try_into().ok()?;
                Some((digest, t.name.clone(), t.role))
            })
            .collect();
        Self {
            entries,
            anonymous_read: config.anonymous_read,
        }
    }

    /// The caller of a request with this `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let Some(header) = header else {
            return if self.anonymous_read {
                Ok(Principal::anonymous())
            } else {
                Err(AuthError::Missing)
            };
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Malformed)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare with every entry, without stopping early, so the time taken does not tell
        // which entry (if any) was close.
        let mut found = None;
        for (stored, name, role) in &self.entries {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some((name.clone(), *role));
            }
        }
        found
            .map(|(name, role)| Principal {
                name,
                role: Some(role),
            })
            .ok_or(AuthError::Unknown)
    }
}

/// A new random token (256 bits, URL-safe base64) and its SHA-256 hex digest.
pub fn new_token() -> (String, String) {
    use base64::Engine;
    use rand::RngCore;
    let mut secret = [0u8; 32];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut secret);
    let token = format!(
        "akg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (token, digest)
}

/// Middleware: authenticates the request and stores its [`Principal`] in the extensions.
pub async fn authenticate(
    State(tokens): State<Arc<TokenTable>>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match tokens.authenticate(header.as_deref()) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => unauthorized(&error),
    }
}

fn unauthorized(error: &AuthError) -> Response {
    let message = match error {
        AuthError::Missing => "this server needs a bearer token (Authorization: Bearer …)",
        AuthError::Malformed => "the Authorization header must be `Bearer <token>`",
        AuthError::Unknown => "unknown token",
    };
    (
        StatusCode::UNAUTHORIZED,
        [
            (WWW_AUTHENTICATE, "Bearer realm=\"assetkg\""),
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::config::TokenEntry;

    #[test]
    fn tokens_are_checked_by_digest_and_role() {
        let (token, digest) = new_token();
        let mut config = ServiceConfig {
            anonymous_read: false,
            ..ServiceConfig::default()
        };
        config.tokens.push(TokenEntry {
            name: "alice".into(),
            role: Role::Curator,
            sha256: digest,
        });
        let table = TokenTable::new(&config);
        let alice = table
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(alice.name, "alice");
        assert!(alice.has(Role::Reader) && alice.has(Role::Curator) && !alice.has(Role::Admin));
        assert_eq!(table.authenticate(None), Err(AuthError::Missing));
        assert_eq!(
            table.authenticate(Some("Bearer nope")),
            Err(AuthError::Unknown)
        );
        assert_eq!(table.authenticate(Some(&token)), Err(AuthError::Malformed));
        config.anonymous_read = true;
        let anonymous = TokenTable::new(&config).authenticate(None).unwrap();
        assert!(!anonymous.has(Role::Reader));
    }
}
