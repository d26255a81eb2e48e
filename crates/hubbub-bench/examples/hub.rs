//! A bare hub for benchmarks: `hub --listen 127.0.0.1:8000 --set key=value ...`.
//!
//! Exists so the bench can measure `hubbub_server::Server` before (or
//! without) the `hubbub serve` command, with nothing else in the process:
//! no logging subscriber, default multi-threaded runtime. Stops on Ctrl-C or
//! SIGTERM, closing every connection as the server does on shutdown.

use hubbub_server::{Config, Server, Sources};

fn usage() -> ! {
    eprintln!("usage: hub [--listen ADDR] [--set key.path=value]...");
    std::process::exit(2)
}

fn main() {
    let mut overrides: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage())
        };
        match flag.as_str() {
            "--listen" => overrides.push(("server.listen".into(), value())),
            "--set" => {
                let kv = value();
                let Some((k, v)) = kv.split_once('=') else {
                    usage()
                };
                overrides.push((k.to_owned(), v.to_owned()));
            }
            _ => usage(),
        }
    }
    let config = match Config::load(&Sources {
        overrides,
        env: std::env::vars().collect(),
        ..Sources::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hub: {e}");
            std::process::exit(2)
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let server = Server::bind(config).await.expect("bind");
        let shared = server.shared();
        eprintln!(
            "hub {} listening on {} (max_connections {})",
            std::process::id(),
            server.local_addr().expect("bound"),
            shared.config.server.max_connections
        );
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        if let Err(e) = server.run_until(stop).await {
            eprintln!("hub: {e}");
        }
    });
}
