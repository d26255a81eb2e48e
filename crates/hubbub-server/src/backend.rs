//! POSTing JSON to an application's backend and reading its answer: what
//! the RPC proxy and the HTTP hooks share. One HTTP client per node (one
//! connection pool for every backend); the caller bounds the time.

use std::time::Duration;

use serde::Serialize;

/// Largest answer read at all, whatever the backend sends.
pub(crate) const MAX_ANSWER: usize = 16 << 20;

/// Why a backend gave no answer to read.
#[derive(Debug)]
pub(crate) enum PostError {
    /// Not reached, failed mid-way, or answered another status than 200.
    Unavailable(String),
    /// Answered more than [`MAX_ANSWER`] bytes.
    TooLarge,
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Unavailable(why) => f.write_str(why),
            PostError::TooLarge => write!(f, "answer larger than {MAX_ANSWER} bytes"),
        }
    }
}

/// The node's client for every backend.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// POSTs `body` as JSON to `url` and reads a 200 answer's body, at most
/// [`MAX_ANSWER`] bytes. Unbounded in time: the caller's timeout is the
/// limit.
pub(crate) async fn post_json<T: Serialize + ?Sized>(
    http: &reqwest::Client,
    url: &str,
    body: &T,
) -> Result<Vec<u8>, PostError> {
    let unavailable = |e: reqwest::Error| PostError::Unavailable(e.to_string());
    let mut resp = match http.post(url).json(body).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => r,
        Ok(r) => return Err(PostError::Unavailable(format!("answered {}", r.status()))),
        Err(e) => return Err(unavailable(e)),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unavailable)? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(PostError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
