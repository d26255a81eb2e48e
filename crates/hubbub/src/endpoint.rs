//! One `--url` (or `HUBBUB_URL`) for both clients: `publish` wants the HTTP
//! base and `subscribe` the WebSocket endpoint, and either is derived from
//! the other so a user can export one variable and use both commands.

use url::Url;

/// The HTTP URL of `api_path` (e.g. `api/publish`) under the hub at `base`;
/// accepts `http://host:port[/prefix]` or the `ws://host:port/ws` form.
pub fn http_url(base: &str, api_path: &str) -> Result<Url, String> {
    let mut url = parse(base)?;
    let scheme = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(format!(
                "{base}: unsupported scheme {other:?} (use http://)"
            ))
        }
    };
    set_scheme(&mut url, scheme)?;
    let path = url.path().trim_end_matches('/');
    let prefix = path.strip_suffix("/ws").unwrap_or(path).to_owned();
    url.set_path(&format!("{prefix}/{api_path}"));
    url.set_query(None);
    Ok(url)
}

/// The WebSocket URL of the hub at `base`; accepts `ws://host:port/ws`, or
/// an HTTP base (`http://host:port`), to which `/ws` is added.
pub fn ws_url(base: &str) -> Result<Url, String> {
    let mut url = parse(base)?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => return Err(format!("{base}: unsupported scheme {other:?} (use ws://)")),
    };
    let was_http = url.scheme().starts_with("http");
    set_scheme(&mut url, scheme)?;
    if was_http || url.path() == "/" || url.path().is_empty() {
        let path = url.path().trim_end_matches('/');
        if !path.ends_with("/ws") {
            url.set_path(&format!("{path}/ws"));
        }
    }
    Ok(url)
}

fn parse(base: &str) -> Result<Url, String> {
    Url::parse(base.trim()).map_err(|e| format!("bad URL {base:?}: {e}"))
}

fn set_scheme(url: &mut Url, scheme: &str) -> Result<(), String> {
    url.set_scheme(scheme)
        .map_err(|()| format!("cannot use {url} as {scheme}://"))
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
    }
}
