//! A query workbench's server: a client sends a query with `rpc`, watches
//! it move through parsing, validating, executing and formatting, and gets
//! the result, all on its one socket.
//!
//! ```text
//! cargo run --example rpc_query_progress                # 127.0.0.1:3002
//! cargo run --example rpc_query_progress -- 127.0.0.1:0 50
//! ```
//!
//! Arguments: listen address, milliseconds per stage; `HUBBUB_*`
//! environment variables configure the node as they do `hubbub serve`.
//! A client sends
//! `{"type": "rpc", "id": 1, "method": "query.run", "data": {"sql": "..."}}`
//! and receives, carrying its correlation id, one `event` per stage on
//! `rpc:query.run` (`query_progress` with `{stage, progress}`; `completed`
//! last), then the `rpc_result` with the columns and rows. An empty query
//! answers `bad_request`; one that does not start with `select` answers
//! `forbidden` (this workbench only reads). `query.echo` answers its data
//! at once, for measuring the round trip alone (`hubbub bench rpc`).

use std::time::Duration;

use hubbub::rpc::{RpcCall, RpcError};
use hubbub::{Node, Sources};
use serde_json::json;

const STAGES: [&str; 4] = ["parsing", "validating", "executing", "formatting"];

#[derive(serde::Deserialize)]
struct Query {
    sql: String,
}

/// Runs one query, telling the caller how far it is.
async fn run(call: RpcCall, step: Duration) -> Result<serde_json::Value, RpcError> {
    let q: Query = call.data_as()?;
    let sql = q.sql.trim();
    if sql.is_empty() {
        return Err(RpcError::bad_request("sql is empty"));
    }
    for (i, stage) in STAGES.iter().enumerate() {
        let progress = i as f64 / STAGES.len() as f64;
        if !call.progress(
            "query_progress",
            &json!({"stage": stage, "progress": progress}),
        )? {
            // The caller left: nobody wants the rest.
            return Err(RpcError::internal("the caller is gone"));
        }
        if *stage == "validating" && !sql.to_ascii_lowercase().starts_with("select") {
            return Err(RpcError::forbidden("this workbench only reads: select ..."));
        }
        tokio::time::sleep(step).await;
    }
    call.progress(
        "query_progress",
        &json!({"stage": "completed", "progress": 1.0}),
    )?;
    Ok(json!({
        "sql": sql,
        "columns": ["n", "square"],
        "rows": (1..=3).map(|n| json!([n, n * n])).collect::<Vec<_>>(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3002".into());
    let step = Duration::from_millis(args.next().map_or(Ok(20), |s| s.parse())?);
    // `HUBBUB_*` variables apply as for `hubbub serve` (a bench raises
    // HUBBUB_CONNECTION__RATE_LIMIT_PER_SECOND this way).
    let node = Node::from_sources(&Sources {
        env: std::env::vars().collect(),
        overrides: vec![("server.listen".into(), listen)],
        ..Sources::default()
    })?;
    node.rpc("query.run", move |call: RpcCall| run(call, step));
    node.rpc("query.echo", |call: RpcCall| async move {
        serde_json::from_str(call.data.get()).map_err(|e| RpcError::bad_request(e.to_string()))
    });
    let server = node.bind().await?;
    println!("listening on {}", server.local_addr()?);
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
