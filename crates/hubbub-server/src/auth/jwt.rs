//! JWT verification (HS256, RS256, ES256) with keys from the configuration,
//! and signing for `hubbub token` and tests.
//!
//! Every key is bound to one algorithm when it is loaded: an HS256 secret
//! verifies HS256 tokens only, an RSA key RS256 only, a P-256 key ES256
//! only. The token's `alg` merely selects among the configured keys, so a
//! token cannot make an RSA public key serve as an HMAC secret (key
//! confusion), and `alg: none` matches no key at all.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::jwks::JwksFile;
use super::{AuthError, Authenticator, Claims, MAX_TOKEN_LEN};
use crate::config::AuthConfig;

/// The algorithms the hub accepts.
const ACCEPTED: [&str; 3] = ["HS256", "RS256", "ES256"];

/// A verification key bound to its algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    /// The only algorithm this key verifies.
    pub(crate) alg: Algorithm,
    /// Key id, matched against the token's `kid` when both have one.
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The authenticator built from `[auth]`: static keys (HS256 secret, RS256
/// and ES256 PEM files) and an optional JWKS file re-read when it changes.
pub struct JwtAuthenticator {
    keys: Vec<VerifyKey>,
    jwks: Option<JwksFile>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_s: u64,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("keys", &self.keys)
            .field("jwks", &self.jwks.as_ref().map(|j| j.path().to_owned()))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_s", &self.leeway_s)
            .finish()
    }
}

impl JwtAuthenticator {
    /// Loads every key `[auth]` names; `Ok(None)` when it names none. Errors
    /// name the file or key that is wrong, never a secret.
    pub fn from_config(cfg: &AuthConfig) -> Result<Option<JwtAuthenticator>, String> {
        let mut keys = Vec::new();
        if let Some(secret) = cfg.hs256_secret.as_deref().filter(|s| !s.is_empty()) {
            if secret.len() < 32 {
                tracing::warn!(
                    "auth.hs256_secret is shorter than 32 bytes; use a long random secret"
                );
            }
            keys.push(VerifyKey {
                alg: Algorithm::HS256,
                kid: None,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        if let Some(path) = &cfg.rs256_public_key_file {
            let pem = read(path)?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| format!("{}: not an RSA public key in PEM: {e}", path.display()))?;
            keys.push(VerifyKey {
                alg: Algorithm::RS256,
                kid: None,
                key,
            });
        }
        if let Some(path) = &cfg.es256_public_key_file {
            let pem = read(path)?;
            let key = DecodingKey::from_ec_pem(&pem)
                .map_err(|e| format!("{}: not a P-256 public key in PEM: {e}", path.display()))?;
            keys.push(VerifyKey {
                alg: Algorithm::ES256,
                kid: None,
                key,
            });
        }
        let jwks = cfg
            .jwks_file
            .as_ref()
            .map(|p| JwksFile::open(p, Duration::from_secs(1)))
            .transpose()?;
        if keys.is_empty() && jwks.is_none() {
            return Ok(None);
        }
        Ok(Some(JwtAuthenticator {
            keys,
            jwks,
            issuer: cfg.issuer.clone().filter(|s| !s.is_empty()),
            audience: cfg.audience.clone().filter(|s| !s.is_empty()),
            leeway_s: cfg.leeway_s,
        }))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway_s;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(iss) => {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            // Without a configured audience the claim is not checked.
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Looks at the header's `alg` before the library parses it, so that
/// `none` and other algorithms the hub never accepts are reported as such
/// rather than as a malformed token.
fn sniff_alg(token: &str) -> Result<(), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    match header.get("alg").and_then(|a| a.as_str()) {
        Some(alg) if ACCEPTED.contains(&alg) => Ok(()),
        Some(_) => Err(AuthError::Algorithm),
        None => Err(AuthError::Malformed),
    }
}

fn map_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::Algorithm,
        ErrorKind::MissingRequiredClaim(c) => AuthError::Claims(match c.as_str() {
            "exp" => "exp is missing",
            "sub" => "sub is missing",
            "iss" => "iss is missing",
            "aud" => "aud is missing",
            _ => "a required claim is missing",
        }),
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::InvalidSubject => {
            AuthError::Claims("wrong claim types")
        }
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => AuthError::Malformed,
        ErrorKind::Json(_) => AuthError::Malformed,
        // Signature mismatch, or a key the library could not use for this
        // token (wrong curve, bad RSA parameters): either way, not verified.
        _ => AuthError::BadSignature,
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TooLarge);
        }
        sniff_alg(token)?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| match map_error(&e) {
            AuthError::BadSignature => AuthError::Malformed,
            other => other,
        })?;
        let jwks = self.jwks.as_ref().map(|j| j.keys());
        let candidates = self
            .keys
            .iter()
            .chain(jwks.iter().flat_map(|k| k.iter()))
            .filter(|k| k.alg == header.alg);
        let mut same_alg = false;
        let mut failure = None;
        for k in candidates {
            same_alg = true;
            if let (Some(want), Some(have)) = (&header.kid, &k.kid) {
                if want != have {
                    continue;
                }
            }
            match jsonwebtoken::decode::<serde_json::Value>(token, &k.key, &self.validation(k.alg))
            {
                Ok(data) => return Claims::from_payload(data.claims),
                Err(e) => match map_error(&e) {
                    // Another key of the same algorithm may still verify it.
                    AuthError::BadSignature => failure = Some(AuthError::BadSignature),
                    other => return Err(other),
                },
            }
        }
        Err(failure.unwrap_or(if same_alg {
            AuthError::UnknownKey
        } else {
            AuthError::Algorithm
        }))
    }
}

/// Signs tokens with one key: for `hubbub token`, tests, and backends
/// written in Rust.
pub struct TokenSigner {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
}

impl TokenSigner {
    /// HS256 with a shared secret (the hub's `auth.hs256_secret`).
    pub fn hs256(secret: &[u8]) -> TokenSigner {
        TokenSigner {
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret),
            kid: None,
        }
    }

    /// RS256 or ES256, by the kind of the PEM private key (PKCS#1 or
    /// PKCS#8 RSA; PKCS#8 P-256).
    pub fn from_private_key_pem(pem: &[u8]) -> Result<TokenSigner, String> {
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Ok(TokenSigner {
                alg: Algorithm::RS256,
                key,
                kid: None,
            });
        }
        match EncodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(TokenSigner {
                alg: Algorithm::ES256,
                key,
                kid: None,
            }),
            Err(_) => Err(
                "not an RSA or P-256 private key in PEM (EC keys must be PKCS#8: \
                 openssl pkcs8 -topk8 -nocrypt)"
                    .to_owned(),
            ),
        }
    }

    /// Puts `kid` in the header, for hubs that verify with a JWKS.
    pub fn with_kid(mut self, kid: impl Into<String>) -> TokenSigner {
        self.kid = Some(kid.into());
        self
    }

    /// `HS256`, `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "HS256",
        }
    }

    /// Signs `claims` (a JSON object with at least `sub` and `exp`).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| format!("signing: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

    fn now() -> u64 {
        crate::util::now_ms() / 1000
    }

    fn hs() -> JwtAuthenticator {
        JwtAuthenticator::from_config(&AuthConfig {
            hs256_secret: Some(SECRET.into()),
            ..AuthConfig::default()
        })
        .unwrap()
        .unwrap()
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn nothing_configured_is_none() {
        assert!(JwtAuthenticator::from_config(&AuthConfig::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn hs256_round_trip_and_refusals() {
        let a = hs();
        let signer = TokenSigner::hs256(SECRET.as_bytes());
        let good = signer
            .sign(&json!({"sub": "alice", "exp": now() + 60, "channels": ["x"]}))
            .unwrap();
        let c = a.authenticate(&good).unwrap();
        assert_eq!(c.sub, "alice");
        let cases = [
            (json!({"sub": "a", "exp": now() - 60}), AuthError::Expired),
            (
                json!({"sub": "a", "exp": now() + 60, "nbf": now() + 60}),
                AuthError::NotYetValid,
            ),
            (json!({"sub": "a"}), AuthError::Claims("exp is missing")),
            (
                json!({"exp": now() + 60}),
                AuthError::Claims("sub is missing"),
            ),
        ];
        for (claims, want) in cases {
            let t = signer.sign(&claims).unwrap();
            assert_eq!(a.authenticate(&t).unwrap_err(), want, "{claims}");
        }
        // Another secret.
        let other = TokenSigner::hs256(b"another-secret-another-secret-another")
            .sign(&json!({"sub": "a", "exp": now() + 60}))
            .unwrap();
        assert_eq!(a.authenticate(&other).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn garbage_never_panics() {
        let a = hs();
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(a.authenticate(&long).unwrap_err(), AuthError::TooLarge);
        for t in [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "\u{0}.\u{0}.\u{0}",
            "eyJ.eyJ.eyJ",
            "e30.e30.",
            "eyJhbGciOiJIUzI1NiJ9..",
            "eyJhbGciOiJIUzI1NiJ9.!!!.x",
            "eyJhbGciOiJIUzI1NiJ9.bnVsbA.x",
        ] {
            assert!(a.authenticate(t).is_err(), "{t:?}");
        }
        let header = b64(&json!({"alg": "HS256"}));
        for payload in [
            json!(null),
            json!([1]),
            json!("s"),
            json!({"sub": {"x": 1}}),
        ] {
            let t = format!("{header}.{}.c2ln", b64(&payload));
            assert!(a.authenticate(&t).is_err());
        }
    }

    #[test]
    fn alg_none_and_unknown_algorithms() {
        let a = hs();
        let payload = b64(&json!({"sub": "a", "exp": now() + 60}));
        for alg in ["none", "None", "HS512", "PS256", "EdDSA", "RS256"] {
            let t = format!("{}.{payload}.", b64(&json!({"alg": alg, "typ": "JWT"})));
            assert_eq!(
                a.authenticate(&t).unwrap_err(),
                AuthError::Algorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn issuer_and_audience() {
        let a = JwtAuthenticator::from_config(&AuthConfig {
            hs256_secret: Some(SECRET.into()),
            issuer: Some("https://idp.example".into()),
            audience: Some("hubbub".into()),
            ..AuthConfig::default()
        })
        .unwrap()
        .unwrap();
        let s = TokenSigner::hs256(SECRET.as_bytes());
        let base =
            json!({"sub": "a", "exp": now() + 60, "iss": "https://idp.example", "aud": "hubbub"});
        assert!(a.authenticate(&s.sign(&base).unwrap()).is_ok());
        let mut wrong_iss = base.clone();
        wrong_iss["iss"] = json!("https://evil.example");
        assert_eq!(
            a.authenticate(&s.sign(&wrong_iss).unwrap()).unwrap_err(),
            AuthError::Issuer
        );
        let mut wrong_aud = base.clone();
        wrong_aud["aud"] = json!(["other"]);
        assert_eq!(
            a.authenticate(&s.sign(&wrong_aud).unwrap()).unwrap_err(),
            AuthError::Audience
        );
        let mut no_iss = base.clone();
        no_iss.as_object_mut().unwrap().remove("iss");
        assert!(a.authenticate(&s.sign(&no_iss).unwrap()).is_err());
    }
}
