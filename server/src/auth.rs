//! Request authentication: the office's admin token and device bearer tokens, as axum extractors.
//!
//! Both credentials travel as `Authorization: Bearer <token>`. A handler that takes [`AdminAuth`] or
//! [`DeviceAuth`] cannot run without a valid one; failures answer 401 through [`ApiError`].

use std::io::ErrorKind;
use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::devices::{Device, TokenCheck};
use crate::error::{ApiError, Error};
use crate::fsutil::{write_atomic, Replace};
use crate::state::AppState;

/// The office credential. Only its SHA-256 is kept in memory.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// An admin token with this secret (surrounding whitespace ignored).
    pub fn from_secret(secret: &str) -> Self {
        AdminToken {
            digest: Sha256::digest(secret.trim().as_bytes()).into(),
        }
    }

    /// Reads `path`, or creates it (256 random bits as hex, mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => return Ok(Self::from_secret(&s)),
            Ok(_) => {
                return Err(Error::Config(format!(
                    "{} is empty; delete it to generate a new admin token",
                    path.display()
                )))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        write_atomic(path, format!("{secret}\n").as_bytes(), 0o600, Replace::No).map_err(io)?;
        tracing::info!(path = %path.display(), "created the admin token");
        Ok(Self::from_secret(&secret))
    }

    /// Whether `presented` is the admin token; constant time over the digests, so timing tells nothing.
    pub fn verify(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&digest).into()
    }

    /// A 256-bit key for `purpose` (e.g. signing the dashboard's session cookies), derived from the token's digest
    /// with HMAC-SHA256. Every node holding the same `admin.token` derives the same key, so they accept each
    /// other's signatures with nothing shared but the file; replacing the token invalidates everything signed with
    /// the old one. The key reveals neither the token nor its digest.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.digest)
            .expect("HMAC takes a key of any length");
        mac.update(b"dockhand key derivation v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The bearer token of a request, if it carries one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Extractor: the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token) if state.admin.verify(token) => Ok(AdminAuth),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// Extractor: the request carries the current token of an active device; holds that device. A revoked
/// device's token answers 401 `revoked`, so the person at the device learns why.
#[derive(Debug, Clone)]
pub struct DeviceAuth(pub Device);

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?.to_string();
        let devices = state.devices.clone();
        // Authentication reads device files or queries the database: keep that off the async workers.
        let check = tokio::task::spawn_blocking(move || devices.check_token(&token)).await??;
        match check {
            TokenCheck::Valid(device) => Ok(DeviceAuth(device)),
            TokenCheck::Revoked(device) => {
                tracing::info!(device = %device.id, "refused a revoked device");
                Err(ApiError::Revoked(device.id))
            }
            TokenCheck::Unknown => Err(ApiError::Unauthorized),
        }
    }
}
