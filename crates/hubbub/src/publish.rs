//! `hubbub publish`: one `POST /api/publish`, the way a backend would do it.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::endpoint::Endpoint;
use crate::Failure;

/// Flags of `hubbub publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Channel to publish to.
    channel: String,
    /// Event data, any JSON value (quote it for the shell: '{"n":1}'), or `-`
    /// to read it from stdin.
    #[arg(value_name = "JSON", allow_hyphen_values = true)]
    data: String,
    /// The event's `event_type`.
    #[arg(long, value_name = "TYPE", default_value = "message")]
    event_type: String,
    /// The hub's HTTP base (a ws://…/ws URL works too).
    #[arg(
        long,
        value_name = "URL",
        env = "HUBBUB_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    url: String,
    /// API key, sent as `Authorization: Bearer`.
    #[arg(
        long,
        value_name = "KEY",
        env = "HUBBUB_API_KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
}

/// The request body; `data` is passed through as the user wrote it, so
/// numbers and key order reach subscribers unchanged.
#[derive(Serialize)]
struct Body<'a> {
    channel: &'a str,
    event_type: &'a str,
    data: &'a RawValue,
}

/// Publishes and prints the hub's answer: exit 0 on 2xx, 1 when the hub
/// refuses or cannot be reached, 2 when the input is wrong.
pub fn run(args: PublishArgs) -> ExitCode {
    crate::logging::init("warn");
    crate::block_on("publish", publish(args))
}

async fn publish(args: PublishArgs) -> Result<(), Failure> {
    let text = if args.data == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("reading data from stdin: {e}")))?;
        s
    } else {
        args.data.clone()
    };
    let data = parse_data(&text)?;
    hubbub_protocol::validate_channel(&args.channel)
        .map_err(|m| Failure::usage(format!("channel {:?}: {m}", args.channel)))?;
    let url = crate::endpoint::http_url(&args.url, "api/publish").map_err(Failure::usage)?;
    let body = serde_json::to_vec(&Body {
        channel: &args.channel,
        event_type: &args.event_type,
        data: &data,
    })
    .map_err(|e| Failure::usage(format!("encoding the request: {e}")))?;
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(30),
        post(&url, body, args.api_key.as_deref()),
    )
    .await
    .map_err(|_| Failure::remote(format!("{url} did not answer within 30 s")))??;
    if status.is_success() {
        println!("{}", body.trim_end());
        Ok(())
    } else {
        let body = body.trim_end();
        Err(Failure::remote(if body.is_empty() {
            status.to_string()
        } else {
            format!("{status}: {body}")
        }))
    }
}

/// One HTTP/1.1 `POST` of a JSON body on a fresh connection; the status
/// and the answer's text. Plain HTTP only: a hub behind TLS is published to
/// by backends with their own HTTP client.
async fn post(
    url: &Endpoint,
    body: Vec<u8>,
    api_key: Option<&str>,
) -> Result<(http::StatusCode, String), Failure> {
    use http_body_util::BodyExt;
    if url.scheme != "http" {
        return Err(Failure::usage(format!(
            "{url}: `hubbub publish` speaks plain http:// only"
        )));
    }
    let (host, port) = url.host_port();
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| Failure::remote(format!("cannot reach {url}: {e}")))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::remote(format!("cannot reach {url}: {}", root_cause(&e))))?;
    tokio::spawn(conn);
    let target = if url.query.is_empty() {
        url.path.clone()
    } else {
        format!("{}?{}", url.path, url.query)
    };
    let mut req = http::Request::post(target)
        .header(http::header::HOST, &url.authority)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(key) = api_key {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Failure::remote(format!("cannot reach {url}: {}", root_cause(&e))))?;
    let status = resp.status();
    let text = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::remote(format!("reading the answer from {url}: {}", root_cause(&e))))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

/// The innermost cause of a failed request ("Connection refused (os error
/// 111)"), which is what a user can act on; the HTTP layer's own message
/// only says that sending failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn parse_data(text: &str) -> Result<Box<RawValue>, Failure> {
    serde_json::from_str::<Box<RawValue>>(text.trim()).map_err(|e| {
        let hint = if text.trim().starts_with(['{', '[', '"']) {
            String::new()
        } else {
            // A bare word is the usual slip: `publish ch hello`.
            format!(" (a string needs JSON quotes: '\"{}\"')", text.trim())
        };
        Failure::usage(format!("data is not valid JSON: {e}{hint}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_kept_verbatim() {
        assert_eq!(
            parse_data(" {\"b\":1, \"a\":1.50}\n").unwrap().get(),
            "{\"b\":1, \"a\":1.50}"
        );
        assert_eq!(parse_data("-5").unwrap().get(), "-5");
    }

    #[test]
    fn bad_data_is_a_usage_error() {
        for bad in ["", "hello", "{\"a\":", "1 2"] {
            let f = parse_data(bad).unwrap_err();
            assert_eq!(f.code, 2, "{bad}");
        }
        assert!(parse_data("hello")
            .unwrap_err()
            .message
            .contains("'\"hello\"'"));
    }
}
