//! `hubbub token`: prints a signed token, for development and tests.
//!
//! The key comes from the same configuration `serve` reads (`--config`,
//! `HUBBUB_*`, `--set`): `auth.hs256_secret`, with `auth.issuer` and
//! `auth.audience` copied into the claims; or an RS256/ES256 private key
//! given with `--private-key`, for hubs that verify with the public half.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use hubbub_server::auth::jwt::TokenSigner;
use hubbub_server::auth::valid_user_id;
use hubbub_server::{Config, Sources};
use serde_json::{json, Value};

use crate::serve::{config_env, parse_set};
use crate::Failure;

/// Flags of `hubbub token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (`sub`).
    #[arg(long, value_name = "USER")]
    sub: String,
    /// Channel patterns the user may subscribe to (`*` suffix wildcard);
    /// without it, every channel outside private namespaces.
    #[arg(long, value_name = "PATTERN,...", value_delimiter = ',')]
    channels: Option<Vec<String>>,
    /// Channel patterns the user may publish to (on top of namespace options).
    #[arg(long, value_name = "PATTERN,...", value_delimiter = ',')]
    publish: Option<Vec<String>>,
    /// Private rooms the user may join.
    #[arg(long, value_name = "ROOM,...", value_delimiter = ',')]
    rooms: Vec<String>,
    /// Grant admin rights (admin streams, the HTTP API).
    #[arg(long)]
    admin: bool,
    /// Presence info, a JSON object.
    #[arg(long, value_name = "JSON")]
    info: Option<String>,
    /// Lifetime: `90s`, `15m`, `1h`, `7d`, or seconds.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// RS256 or ES256 private key (PEM) to sign with instead of auth.hs256_secret.
    #[arg(long, value_name = "FILE")]
    private_key: Option<PathBuf>,
    /// `kid` header, for hubs that verify with a JWKS file.
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
    /// TOML configuration file (for auth.hs256_secret, issuer, audience).
    #[arg(long, value_name = "FILE", env = "HUBBUB_CONFIG")]
    config: Option<PathBuf>,
    /// Any configuration key, e.g. `--set auth.hs256_secret=...` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
}

/// `90s`, `15m`, `1h`, `7d`, or plain seconds.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 90s, 15m, 1h or 7d, got {s:?}"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in {s:?} (s, m, h, d)")),
    };
    let secs = n
        .checked_mul(unit)
        .filter(|s| *s > 0 && *s <= 366 * 86_400)
        .ok_or_else(|| format!("{s:?}: the lifetime must be between 1 s and 366 days"))?;
    Ok(Duration::from_secs(secs))
}

/// Prints the token on stdout (exit 0), or says why not (exit 2).
pub fn run(args: TokenArgs) -> ExitCode {
    match token(&args) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(f) => f.report("token"),
    }
}

fn token(args: &TokenArgs) -> Result<String, Failure> {
    if !valid_user_id(&args.sub) {
        return Err(Failure::usage(
            "--sub must be 1-128 characters of A-Z a-z 0-9 _ . - : @",
        ));
    }
    let config = Config::load(&Sources {
        preset: None,
        file: args.config.clone(),
        env: config_env(),
        overrides: args.set.clone(),
    })
    .map_err(|e| Failure::usage(e.to_string()))?;
    let signer =
        match &args.private_key {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| Failure::usage(format!("reading {}: {e}", path.display())))?;
                TokenSigner::from_private_key_pem(&pem)
                    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
            }
            None => match config
                .auth
                .hs256_secret
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                Some(secret) => TokenSigner::hs256(secret.as_bytes()),
                None => return Err(Failure::usage(
                    "no signing key: set auth.hs256_secret (--config, HUBBUB_AUTH__HS256_SECRET \
                     or --set) or pass --private-key",
                )),
            },
        };
    let signer = match &args.kid {
        Some(kid) => signer.with_kid(kid),
        None => signer,
    };
    let now = hubbub_server::now_ms() / 1000;
    let mut claims = json!({
        "sub": args.sub,
        "iat": now,
        "exp": now + args.ttl.as_secs(),
    });
    let obj = claims.as_object_mut().expect("an object");
    if let Some(c) = &args.channels {
        obj.insert("channels".into(), json!(c));
    }
    if let Some(p) = &args.publish {
        obj.insert("publish".into(), json!(p));
    }
    if !args.rooms.is_empty() {
        obj.insert("rooms".into(), json!(args.rooms));
    }
    if args.admin {
        obj.insert("admin".into(), json!(true));
    }
    if let Some(info) = &args.info {
        match serde_json::from_str::<Value>(info) {
            Ok(v @ Value::Object(_)) => {
                obj.insert("info".into(), v);
            }
            _ => return Err(Failure::usage("--info must be a JSON object")),
        }
    }
    if let Some(iss) = config.auth.issuer.as_deref().filter(|s| !s.is_empty()) {
        obj.insert("iss".into(), json!(iss));
    }
    if let Some(aud) = config.auth.audience.as_deref().filter(|s| !s.is_empty()) {
        obj.insert("aud".into(), json!(aud));
    }
    signer.sign(&claims).map_err(Failure::usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: TokenArgs,
    }

    fn args(a: &[&str]) -> TokenArgs {
        T::try_parse_from(std::iter::once("token").chain(a.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_ttl("30").unwrap(), Duration::from_secs(30));
        for bad in ["", "h", "1y", "0s", "-5s", "400d", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signs_with_the_configured_secret() {
        let a = args(&[
            "--sub",
            "alice",
            "--channels",
            "metrics,room:*",
            "--publish",
            "chat:*",
            "--admin",
            "--set",
            "auth.hs256_secret=test-secret-test-secret-test-secret",
            "--set",
            "auth.issuer=idp",
        ]);
        let t = token(&a).unwrap();
        let verifier = hubbub_server::auth::jwt::JwtAuthenticator::from_config(
            &hubbub_server::config::AuthConfig {
                hs256_secret: Some("test-secret-test-secret-test-secret".into()),
                issuer: Some("idp".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        use hubbub_server::auth::Authenticator;
        let c = verifier.authenticate(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert!(c.admin);
        assert_eq!(c.channels.unwrap().len(), 2);
        assert!(c.expires_at.unwrap() > hubbub_server::now_ms() / 1000 + 3000);
    }

    #[test]
    fn refusals() {
        let no_key = args(&["--sub", "alice"]);
        // Only a key from the environment could make this pass.
        if std::env::var_os("HUBBUB_AUTH__HS256_SECRET").is_none() {
            assert_eq!(token(&no_key).unwrap_err().code, 2);
        }
        let bad_sub = args(&["--sub", "a b", "--set", "auth.hs256_secret=x"]);
        assert_eq!(token(&bad_sub).unwrap_err().code, 2);
        let bad_info = args(&[
            "--sub",
            "a",
            "--info",
            "[1]",
            "--set",
            "auth.hs256_secret=x",
        ]);
        assert_eq!(token(&bad_info).unwrap_err().code, 2);
    }
}
