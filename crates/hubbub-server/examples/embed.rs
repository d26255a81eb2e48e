//! Embedding the hub in your own program: load a configuration, bind, run
//! until Ctrl-C. Arguments are `key.path=value` overrides, e.g.
//! `cargo run -p hubbub-server --example embed -- server.listen=127.0.0.1:9001 server.testing_echo=true`.

use hubbub_server::{Config, Server, Sources};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let overrides = std::env::args()
        .skip(1)
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let config = Config::load(&Sources {
        overrides,
        ..Sources::default()
    })?;
    let server = Server::bind(config).await?;
    println!("listening on {}", server.local_addr()?);
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
