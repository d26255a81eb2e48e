//! A JWKS file (`auth.jwks_file`): RS256 and ES256 public keys by `kid`,
//! re-read when the file changes so keys rotate without a restart.
//!
//! On use, at most once per interval (one second), the file's modification
//! time and length are compared with those last read; only a change reads
//! and parses it again. A file that no longer parses, or holds no usable
//! key, is reported and the previous keys stay in force. The check runs
//! without holding the lock, and never across an `.await` (there is none).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;

use super::jwt::VerifyKey;

/// Largest JWKS file read.
const MAX_FILE: u64 = 1 << 20;

type Stamp = (Option<SystemTime>, u64);

struct State {
    keys: Arc<[VerifyKey]>,
    stamp: Stamp,
    checked: Instant,
}

/// The keys of a JWKS file, kept current.
pub struct JwksFile {
    path: PathBuf,
    every: Duration,
    state: Mutex<State>,
}

impl JwksFile {
    /// Reads `path` now (an error if it is unreadable or holds no usable
    /// key) and re-checks it at most once per `every` afterwards.
    pub fn open(path: &Path, every: Duration) -> Result<JwksFile, String> {
        let stamp = stamp(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let keys = load(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(JwksFile {
            path: path.to_owned(),
            every,
            state: Mutex::new(State {
                keys,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The file this reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys now in force, re-reading the file first if it is time to
    /// look and it changed.
    pub fn keys(&self) -> Arc<[VerifyKey]> {
        let last = {
            let mut s = self.state.lock();
            if s.checked.elapsed() < self.every {
                return s.keys.clone();
            }
            // Claim this check so concurrent callers keep the current keys.
            s.checked = Instant::now();
            s.stamp
        };
        let now = match stamp(&self.path) {
            Ok(st) => st,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "JWKS file unreadable; keeping the keys already loaded");
                return self.state.lock().keys.clone();
            }
        };
        if now == last {
            return self.state.lock().keys.clone();
        }
        let loaded = load(&self.path);
        let mut s = self.state.lock();
        s.stamp = now;
        match loaded {
            Ok(keys) => {
                tracing::info!(file = %self.path.display(), keys = keys.len(), "JWKS reloaded");
                s.keys = keys;
            }
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "JWKS file not usable; keeping the keys already loaded");
            }
        }
        s.keys.clone()
    }
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len()))
}

fn load(path: &Path) -> Result<Arc<[VerifyKey]>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse(&bytes).map(Arc::from)
}

/// The usable keys of a JWKS document: RSA keys for RS256 and P-256 keys
/// for ES256, not marked for encryption. Others are skipped with a warning.
pub fn parse(bytes: &[u8]) -> Result<Vec<VerifyKey>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(list) = doc.get("keys").and_then(|k| k.as_array()) else {
        return Err("no \"keys\" array".to_owned());
    };
    let mut keys = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        match key_of(raw) {
            Ok(k) => keys.push(k),
            Err(why) => tracing::warn!(index = i, reason = why, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err("no usable RS256 or ES256 key".to_owned());
    }
    Ok(keys)
}

fn key_of(raw: &serde_json::Value) -> Result<VerifyKey, &'static str> {
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|_| "not a JWK")?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("marked for encryption");
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return Err("not an RS256 or ES256 public key"),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "key parameters are not valid")?;
    Ok(VerifyKey {
        alg,
        kid: jwk.common.key_id.clone(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn skips_what_it_cannot_use() {
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "PS256"},
            {"kty": "weird"},
            "not an object",
            {"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "k2", "crv": "P-256", "x": "AAAA", "y": "AAAA", "alg": "ES256"}
        ]});
        let keys = parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].alg, Algorithm::RS256);
        assert_eq!(keys[0].kid.as_deref(), Some("k1"));
        assert_eq!(keys[1].alg, Algorithm::ES256);
        for bad in [&b"nope"[..], b"{}", b"{\"keys\": []}", b"{\"keys\": 1}"] {
            assert!(parse(bad).is_err());
        }
    }
}
