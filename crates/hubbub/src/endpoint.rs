//! One `--url` (or `HUBBUB_URL`) for both clients: `publish` wants the HTTP
//! base and `subscribe` the WebSocket endpoint, and either is derived from
//! the other so a user can export one variable and use both commands.
//!
//! URLs are taken apart by hand (scheme, authority, path, query): the two
//! clients need nothing more, and a full URL library (with international
//! domain names) was a fifth of the binary's build time.

use std::fmt;

/// A hub URL taken apart: enough to turn one form into the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http`, `https`, `ws` or `wss`.
    pub scheme: &'static str,
    /// `host[:port]`, as given.
    pub authority: String,
    /// Starts with `/`.
    pub path: String,
    /// Without the `?`; empty for none.
    pub query: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)?;
        if !self.query.is_empty() {
            write!(f, "?{}", self.query)?;
        }
        Ok(())
    }
}

impl Endpoint {
    /// Adds `name=value` to the query, percent-encoded.
    pub fn append_query(&mut self, name: &str, value: &str) {
        if !self.query.is_empty() {
            self.query.push('&');
        }
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        self.query.push_str(&encoded);
    }

    /// The port to dial: the explicit one, else the scheme's.
    pub fn host_port(&self) -> (String, u16) {
        let default = if matches!(self.scheme, "https" | "wss") {
            443
        } else {
            80
        };
        let a = self.authority.as_str();
        // `[::1]:8000`, `host:8000`, `host`
        if let Some(rest) = a.strip_prefix('[') {
            if let Some((host, after)) = rest.split_once(']') {
                let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
                return (host.to_owned(), port.unwrap_or(default));
            }
        }
        match a.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse().expect("checked")),
            _ => (a.to_owned(), default),
        }
    }
}

/// The HTTP URL of `api_path` (e.g. `api/publish`) under the hub at `base`;
/// accepts `http://host:port[/prefix]` or the `ws://host:port/ws` form.
pub fn http_url(base: &str, api_path: &str) -> Result<Endpoint, String> {
    let mut url = parse(base)?;
    url.scheme = match url.scheme {
        "http" | "ws" => "http",
        _ => "https",
    };
    let path = url.path.trim_end_matches('/');
    let prefix = path.strip_suffix("/ws").unwrap_or(path).to_owned();
    url.path = format!("{prefix}/{api_path}");
    url.query.clear();
    Ok(url)
}

/// The WebSocket URL of the hub at `base`; accepts `ws://host:port/ws`, or
/// an HTTP base (`http://host:port`), to which `/ws` is added.
pub fn ws_url(base: &str) -> Result<Endpoint, String> {
    let mut url = parse(base)?;
    let was_http = url.scheme.starts_with("http");
    url.scheme = match url.scheme {
        "ws" | "http" => "ws",
        _ => "wss",
    };
    if was_http || url.path == "/" {
        let path = url.path.trim_end_matches('/');
        if !path.ends_with("/ws") {
            url.path = format!("{path}/ws");
        }
    }
    Ok(url)
}

fn parse(base: &str) -> Result<Endpoint, String> {
    let text = base.trim();
    let bad = |why: &str| format!("bad URL {base:?}: {why}");
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host[:port][/path]"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        "ws" => "ws",
        "wss" => "wss",
        other => {
            return Err(format!(
                "{base}: unsupported scheme {other:?} (use http:// or ws://)"
            ))
        }
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, "/"),
    };
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(bad("expected a host (and port) after the scheme"));
    }
    Ok(Endpoint {
        scheme,
        authority: authority.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_from_either_form() {
        let p = |b| http_url(b, "api/publish").unwrap().to_string();
        assert_eq!(p("http://h:1"), "http://h:1/api/publish");
        assert_eq!(p("http://h:1/"), "http://h:1/api/publish");
        assert_eq!(p("http://h:1/hub/"), "http://h:1/hub/api/publish");
        assert_eq!(p("ws://h:1/ws"), "http://h:1/api/publish");
        assert_eq!(p("wss://h/hub/ws?x=1"), "https://h/hub/api/publish");
        assert!(http_url("ftp://h", "api/publish").is_err());
        assert!(http_url("h:1", "api/publish").is_err());
        assert!(http_url("http://", "api/publish").is_err());
    }

    #[test]
    fn ws_from_either_form() {
        let w = |b| ws_url(b).unwrap().to_string();
        assert_eq!(w("ws://h:1/ws"), "ws://h:1/ws");
        assert_eq!(w("ws://h:1"), "ws://h:1/ws");
        assert_eq!(w("ws://h:1/custom"), "ws://h:1/custom");
        assert_eq!(w("http://h:1"), "ws://h:1/ws");
        assert_eq!(w("https://h/hub"), "wss://h/hub/ws");
        assert_eq!(w("http://h:1/ws"), "ws://h:1/ws");
        assert_eq!(w("ws://h:1/ws?a=b"), "ws://h:1/ws?a=b");
    }

    #[test]
    fn ports_and_queries() {
        let e = |b| ws_url(b).unwrap();
        assert_eq!(e("ws://h:1").host_port(), ("h".into(), 1));
        assert_eq!(e("wss://h").host_port(), ("h".into(), 443));
        assert_eq!(e("http://[::1]:9/").host_port(), ("::1".into(), 9));
        let mut u = e("ws://h:1/ws");
        u.append_query("user_id", "a b&c");
        assert_eq!(u.to_string(), "ws://h:1/ws?user_id=a+b%26c");
    }
}
