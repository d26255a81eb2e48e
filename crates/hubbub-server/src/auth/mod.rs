//! Who a connection is and what it may do (PROTOCOL.md sections 1 to 3).
//!
//! * [`Authenticator`]: the narrow interface the transport and the HTTP
//!   API call to turn a token into [`Claims`]; [`jwt::JwtAuthenticator`]
//!   is the implementation the configuration builds, and an embedding
//!   application may bring its own.
//! * [`Claims`] and [`Pattern`]: what a token grants.
//! * [`may_subscribe`] and [`may_publish`]: the authorization rules, as
//!   pure functions of the claims, so they are tested in one place.
//!
//! Tokens never appear in error messages or logs: every [`AuthError`]
//! message is fixed text.

pub mod jwks;
pub mod jwt;

use std::fmt;

use serde::Deserialize;

/// Largest token accepted, in bytes; larger ones are refused unread.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Longest user id (`sub`), so that `user:<id>` is a valid channel name.
pub const MAX_USER_ID_LEN: usize = 128;

use crate::channel::{Class, Kind};

/// Turns a presented token into the claims it grants.
///
/// Implementations must be cheap enough to run on every handshake (no
/// network round trip: a key set is refreshed in the background or on a
/// timer, not per call) and must not put the token in their errors.
pub trait Authenticator: Send + Sync {
    /// Verifies `token` and returns what it grants.
    fn authenticate(&self, token: &str) -> Result<Claims, AuthError>;
}

/// Why a token was refused. Every message is fixed text: a token, or
/// any part of one, never reaches a client or a log through it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Over [`MAX_TOKEN_LEN`].
    #[error("the token is larger than 8192 bytes")]
    TooLarge,
    /// Not three base64url parts with a JSON header and payload.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` is `none`, unknown, or not the algorithm of any configured key.
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// No configured key has the token's `kid`.
    #[error("no configured key matches the token's kid")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is missing or not the configured issuer.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// `aud` is missing or does not name the configured audience.
    #[error("the token's audience is not accepted")]
    Audience,
    /// A claim is missing or has the wrong shape; the text names which.
    #[error("the token's claims are not valid: {0}")]
    Claims(&'static str),
    /// No key is configured, so no token can be accepted.
    #[error("tokens are not accepted by this hub")]
    NotConfigured,
}

/// A channel pattern from a token's `channels` or `publish` claim: an
/// exact name, or a prefix followed by `*` (`room:*`, or `*` for all).
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    prefix: bool,
}

impl Pattern {
    /// Reads one pattern. A `*` anywhere but at the end is an ordinary
    /// character, which no valid channel name contains.
    pub fn new(s: &str) -> Pattern {
        match s.strip_suffix('*') {
            Some(p) => Pattern {
                text: p.into(),
                prefix: true,
            },
            None => Pattern {
                text: s.into(),
                prefix: false,
            },
        }
    }

    /// Whether `channel` is covered.
    pub fn matches(&self, channel: &str) -> bool {
        if self.prefix {
            channel.starts_with(&*self.text)
        } else {
            *self.text == *channel
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.text, if self.prefix { "*" } else { "" })
    }
}

/// Whether any of `patterns` covers `channel`.
pub fn any_match(patterns: &[Pattern], channel: &str) -> bool {
    patterns.iter().any(|p| p.matches(channel))
}

/// What a verified token grants (PROTOCOL.md section 1; docs/security.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The user (`sub`): the connection's `user_id`.
    pub sub: String,
    /// Channels the user may subscribe to. `None` (no claim): every channel
    /// outside private namespaces; `Some`: only those matched, private
    /// namespaces included.
    pub channels: Option<Vec<Pattern>>,
    /// Channels the user may publish to, on top of the namespace's
    /// `publish` option. `None` (no claim): the namespace option alone
    /// decides, outside private namespaces.
    pub publish: Option<Vec<Pattern>>,
    /// Private rooms the user may join (enforced once rooms exist).
    pub rooms: Vec<String>,
    /// Admin rights: the `connections` and `logs` streams, and the HTTP API.
    pub admin: bool,
    /// The right to start and stop jobs (`algorithm_start`), whatever the
    /// namespaces allow (docs/algorithms.md).
    pub jobs: bool,
    /// Shown to others in presence (a JSON object).
    pub info: Option<serde_json::Map<String, serde_json::Value>>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

impl Claims {
    /// Claims for `sub` that grant nothing beyond the defaults.
    pub fn for_user(sub: impl Into<String>) -> Claims {
        Claims {
            sub: sub.into(),
            channels: None,
            publish: None,
            rooms: Vec::new(),
            admin: false,
            jobs: false,
            info: None,
            expires_at: None,
        }
    }

    /// Builds claims from a token's JSON payload (signature and time
    /// claims already checked by the caller).
    pub fn from_payload(payload: serde_json::Value) -> Result<Claims, AuthError> {
        let raw: RawClaims =
            serde_json::from_value(payload).map_err(|_| AuthError::Claims("wrong claim types"))?;
        let sub = raw.sub.ok_or(AuthError::Claims("sub is missing"))?;
        if !valid_user_id(&sub) {
            return Err(AuthError::Claims(
                "sub must be 1-128 characters of A-Z a-z 0-9 _ . - : @",
            ));
        }
        let info = match raw.info {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(m)) => Some(m),
            Some(_) => return Err(AuthError::Claims("info must be an object")),
        };
        Ok(Claims {
            sub,
            channels: raw.channels.map(PatternList::into_patterns),
            publish: raw.publish.map(PatternList::into_patterns),
            rooms: raw.rooms.map(PatternList::into_strings).unwrap_or_default(),
            admin: raw.admin.unwrap_or(false),
            jobs: raw.jobs.unwrap_or(false),
            info,
            expires_at: match raw.exp {
                None => None,
                Some(n) => Some(
                    n.as_u64()
                        .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                        .ok_or(AuthError::Claims("exp must be a positive number"))?,
                ),
            },
        })
    }
}

/// Whether `id` can name a user: 1 to 128 characters of a channel name.
pub fn valid_user_id(id: &str) -> bool {
    id.len() <= MAX_USER_ID_LEN && hubbub_protocol::validate_channel(id).is_ok()
}

/// The claims as they appear in a token.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<serde_json::Number>,
    channels: Option<PatternList>,
    publish: Option<PatternList>,
    rooms: Option<PatternList>,
    admin: Option<bool>,
    jobs: Option<bool>,
    info: Option<serde_json::Value>,
}

/// A list of names: a JSON array, or one comma-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
enum PatternList {
    List(Vec<String>),
    One(String),
}

impl PatternList {
    fn into_strings(self) -> Vec<String> {
        match self {
            PatternList::List(v) => v,
            PatternList::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    fn into_patterns(self) -> Vec<Pattern> {
        self.into_strings()
            .iter()
            .map(|s| Pattern::new(s))
            .collect()
    }
}

/// Why a subscription or publication is refused (the text of `error forbidden`).
pub type Denied = &'static str;

/// Whether a connection may receive `channel` (`subscribe`, `history`).
///
/// * `user:<id>`: only the connection whose user is `<id>`.
/// * `connections`, `logs`: admins only.
/// * Otherwise, with a `channels` claim: only channels it matches (which
///   may include private namespaces). Without one (or without a token):
///   any channel outside private namespaces.
pub(crate) fn may_subscribe(
    claims: Option<&Claims>,
    user_id: Option<&str>,
    channel: &str,
    class: &Class<'_>,
) -> Result<(), Denied> {
    match class.kind {
        Kind::User(owner) => {
            return if user_id == Some(owner) {
                Ok(())
            } else {
                Err("this user: channel belongs to another user")
            };
        }
        Kind::Stream { admin: true } => {
            return if claims.is_some_and(|c| c.admin) {
                Ok(())
            } else {
                Err("this stream is for admins only")
            };
        }
        _ => {}
    }
    match claims.and_then(|c| c.channels.as_deref()) {
        Some(patterns) if any_match(patterns, channel) => Ok(()),
        Some(_) => Err("the token does not grant this channel"),
        None if class.ns.private => Err("this channel is private; the token must grant it"),
        None => Ok(()),
    }
}

/// Whether a connection may publish to `channel`, given its class: the
/// namespace's `publish` and `private` options; built-in streams and
/// `user:` channels are for the hub and the HTTP API only.
pub(crate) fn may_publish(
    claims: Option<&Claims>,
    channel: &str,
    class: &Class<'_>,
) -> Result<(), Denied> {
    if !class.ns.publish || class.hub_only() {
        return Err("clients may not publish to this channel");
    }
    match claims.and_then(|c| c.publish.as_deref()) {
        Some(patterns) if any_match(patterns, channel) => Ok(()),
        Some(_) => Err("the token does not grant publishing to this channel"),
        None if class.ns.private => {
            Err("this channel is private; the token must grant publishing to it")
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: serde_json::Value) -> Claims {
        Claims::from_payload(v).unwrap()
    }

    #[test]
    fn patterns() {
        let p = Pattern::new("room:*");
        assert!(p.matches("room:a") && p.matches("room:"));
        assert!(!p.matches("rooms") && !p.matches("chat:room:a"));
        assert!(Pattern::new("*").matches("anything"));
        let exact = Pattern::new("metrics");
        assert!(exact.matches("metrics") && !exact.matches("metrics2"));
        assert!(!Pattern::new("a*b").matches("axb"));
        assert_eq!(format!("{p:?}"), "room:*");
    }

    #[test]
    fn claims_from_payload() {
        let c = claims(json!({
            "sub": "alice", "exp": 10, "channels": ["metrics", "room:*"],
            "publish": "chat:*, news", "rooms": ["r1"], "admin": true,
            "info": {"name": "Alice"}
        }));
        assert_eq!(c.sub, "alice");
        assert_eq!(c.expires_at, Some(10));
        assert_eq!(c.channels.as_ref().unwrap().len(), 2);
        assert!(any_match(c.publish.as_ref().unwrap(), "news"));
        assert_eq!(c.rooms, ["r1"]);
        assert!(c.admin);
        assert_eq!(c.info.unwrap()["name"], "Alice");
        let bare = claims(json!({"sub": "bob"}));
        assert!(bare.channels.is_none() && bare.publish.is_none() && !bare.admin);
        for bad in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": "a b"}),
            json!({"sub": "x".repeat(129)}),
            json!({"sub": 5}),
            json!({"sub": "a", "admin": "yes"}),
            json!({"sub": "a", "channels": 3}),
            json!({"sub": "a", "info": [1]}),
            json!({"sub": "a", "exp": -1}),
        ] {
            assert!(
                matches!(Claims::from_payload(bad.clone()), Err(AuthError::Claims(_))),
                "{bad}"
            );
        }
    }

    /// `vip` private (publish on), `chat` and `news` open to publishing,
    /// `quiet` not.
    fn config() -> crate::Config {
        use crate::config::NamespaceOptions;
        let mut c = crate::Config::default();
        let ns = |publish, private| NamespaceOptions {
            publish,
            private,
            ..NamespaceOptions::default()
        };
        c.namespaces.insert("vip".into(), ns(true, true));
        c.namespaces.insert("chat".into(), ns(true, false));
        c.namespaces.insert("news".into(), ns(true, false));
        c.namespaces.insert("quiet".into(), ns(false, false));
        c
    }

    #[test]
    fn subscribe_rules() {
        let c = config();
        let sub = |claims: Option<&Claims>, user: Option<&str>, ch: &str| {
            may_subscribe(claims, user, ch, &crate::channel::classify(&c, ch))
        };
        let limited = claims(json!({"sub": "al", "channels": ["metrics", "room:*", "vip:lounge"]}));
        let open = claims(json!({"sub": "al"}));
        let admin = claims(json!({"sub": "root", "admin": true, "channels": []}));
        // user: channels
        assert!(sub(Some(&open), Some("al"), "user:al").is_ok());
        assert!(sub(Some(&open), Some("al"), "user:bo").is_err());
        assert!(sub(None, None, "user:al").is_err());
        assert!(sub(None, Some("al"), "user:al").is_ok());
        // The channels claim restricts...
        assert!(sub(Some(&limited), Some("al"), "metrics").is_ok());
        assert!(sub(Some(&limited), Some("al"), "room:x").is_ok());
        assert!(sub(Some(&limited), Some("al"), "news").is_err());
        // ...and grants private namespaces explicitly.
        assert!(sub(Some(&limited), Some("al"), "vip:lounge").is_ok());
        assert!(sub(Some(&limited), Some("al"), "vip:other").is_err());
        // No claim: public only. Anonymous: public only.
        assert!(sub(Some(&open), Some("al"), "news").is_ok());
        assert!(sub(Some(&open), Some("al"), "vip:lounge").is_err());
        assert!(sub(None, None, "news").is_ok());
        assert!(sub(None, None, "vip:lounge").is_err());
        // Admin streams.
        for s in crate::channel::ADMIN_STREAMS {
            assert!(sub(Some(&admin), Some("root"), s).is_ok());
            assert!(sub(Some(&open), Some("al"), s).is_err());
            assert!(sub(None, None, s).is_err());
        }
        assert!(sub(Some(&admin), Some("root"), "news").is_err());
    }

    #[test]
    fn publish_rules() {
        let c = config();
        let publ = |claims: Option<&Claims>, ch: &str| {
            may_publish(claims, ch, &crate::channel::classify(&c, ch))
        };
        let limited = claims(json!({"sub": "al", "publish": ["chat:*", "quiet:*"]}));
        let open = claims(json!({"sub": "al"}));
        assert!(publ(Some(&limited), "chat:x").is_ok());
        assert!(publ(Some(&limited), "news:x").is_err());
        assert!(
            publ(Some(&limited), "quiet:x").is_err(),
            "the namespace says no"
        );
        assert!(publ(Some(&open), "news:x").is_ok());
        assert!(publ(None, "news:x").is_ok());
        assert!(publ(None, "vip:x").is_err());
        assert!(publ(Some(&open), "vip:x").is_err());
        let vip = claims(json!({"sub": "al", "publish": ["vip:*"]}));
        assert!(publ(Some(&vip), "vip:x").is_ok());
        assert!(publ(Some(&vip), "user:al").is_err());
        assert!(publ(Some(&open), "metrics").is_err());
    }
}
