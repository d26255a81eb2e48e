//! `hubbub serve`: flags become the top configuration layer, then the node
//! runs until SIGTERM or SIGINT and drains its connections before exiting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use hubbub_server::config::EngineKind;
use hubbub_server::{Config, Node, Preset, Server, Sources};
use tokio::signal::unix::{signal, SignalKind};

/// Variables the clients read that share the `HUBBUB_` prefix but are not
/// configuration keys; left in, the loader would reject them as unknown.
pub(crate) const CLIENT_ENV: [&str; 2] = ["HUBBUB_API_KEY", "HUBBUB_TOKEN"];

/// Flags of `hubbub serve`. Precedence: flags > `HUBBUB_*` environment >
/// config file > preset > defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE", env = "HUBBUB_CONFIG")]
    config: Option<PathBuf>,
    /// Starting point for limits and timeouts: standard, high_performance or
    /// lightweight.
    #[arg(long, value_name = "PRESET", env = "HUBBUB_PRESET", value_parser = parse_preset)]
    preset: Option<Preset>,
    /// Address for WebSocket and HTTP (port 0 picks a free port)
    /// [default: 127.0.0.1:8000].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// development allows anonymous connections, `?user_id=` and an open
    /// loopback API [default: development].
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Bearer key required by the HTTP API.
    #[arg(
        long,
        value_name = "KEY",
        env = "HUBBUB_API_KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// Most concurrent WebSocket connections.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Serve an RFC 6455 echo endpoint at / and /echo (conformance suites only).
    #[arg(long)]
    testing_echo: bool,
    /// Run a made-up workload for the dashboard to show (a task queue, an
    /// `orders` channel, metrics that raise alerts) and let room members
    /// chat (`namespaces.room.publish`); development mode only.
    #[arg(long)]
    demo: bool,
    /// PEM certificate chain: serve wss:// and https:// (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log lines as `text` (for people) or `json` (one object per line,
    /// with `node_id`, for log stacks) [default: text].
    #[arg(long, value_enum, value_name = "FORMAT", env = "HUBBUB_LOG_FORMAT")]
    log_format: Option<crate::logging::LogFormat>,
    /// Any configuration key, e.g. `--set connection.max_message_size=65536`
    /// or `--set namespaces.chat.publish=true` (repeatable; the named flags
    /// above are applied after these).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
}

/// `--mode` values, mirrored from the config's `Mode` so that clap can list
/// them in `--help`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Development,
    Production,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

pub(crate) fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// A TOML basic string, so a flag's value is never re-read as a number or
/// boolean (an API key `1234` must stay a string).
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ServeArgs {
    fn sources(&self) -> Sources {
        let mut overrides = self.set.clone();
        let mut flag = |k: &str, v: String| overrides.push((k.to_owned(), v));
        if let Some(a) = &self.listen {
            flag("server.listen", toml_string(a));
        }
        if let Some(m) = self.mode {
            let m = match m {
                ModeArg::Development => "development",
                ModeArg::Production => "production",
            };
            flag("server.mode", toml_string(m));
        }
        if let Some(k) = &self.api_key {
            flag("api.key", toml_string(k));
        }
        if let Some(n) = self.max_connections {
            flag("server.max_connections", n.to_string());
        }
        if self.testing_echo {
            flag("server.testing_echo", "true".to_owned());
        }
        if self.demo {
            flag("namespaces.room.publish", "true".to_owned());
        }
        if let Some(p) = &self.tls_cert {
            flag("server.tls_cert", toml_string(&p.to_string_lossy()));
        }
        if let Some(p) = &self.tls_key {
            flag("server.tls_key", toml_string(&p.to_string_lossy()));
        }
        Sources {
            preset: self.preset,
            file: self.config.clone(),
            env: config_env(),
            overrides,
        }
    }
}

/// The process environment as configuration sees it: everything but the
/// clients' own `HUBBUB_*` variables.
pub(crate) fn config_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !CLIENT_ENV.contains(&k.as_str()))
        .collect()
}

/// Loads the configuration (exit 2 when it is wrong), then runs the node on
/// a multi-thread runtime until a signal has drained it (exit 0).
pub fn run(args: ServeArgs) -> ExitCode {
    crate::logging::init_with("info", args.log_format.unwrap_or_default());
    let config = match Config::load(&args.sources()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hubbub serve: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub serve: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.demo && !config.is_development() {
        eprintln!("hubbub serve: --demo runs a made-up workload: development mode only");
        return ExitCode::from(2);
    }
    let code = rt.block_on(serve(config, args.demo));
    // Connections past the drain deadline are abandoned, not awaited.
    rt.shutdown_timeout(Duration::from_millis(500));
    code
}

async fn serve(config: Config, demo: bool) -> ExitCode {
    // Handlers go in before the address is printed: whoever reads it may
    // signal at once, and the default action would skip the drain.
    let shutdown = match shutdown_signal() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub serve: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wanted = config.server.listen;
    let development = config.is_development();
    let api_key = config.api.key.is_some();
    let auth_required = config.auth_required();
    let testing_echo = config.server.testing_echo;
    let dashboard = match hubbub_dashboard::DashboardConfig::from_config(&config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hubbub serve: {e}");
            return ExitCode::from(2);
        }
    };
    let page = dashboard.enabled;
    let (node, metrics, tasks) = match build_node(config, dashboard).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    if demo {
        crate::demo::spawn(&node, tasks, metrics.clone());
    }
    crate::logging::set_node_id(node.node_id());
    let server = match Server::bind_node(node).await {
        Ok(s) => s,
        // A key, certificate or auth setting that cannot work: like any
        // other configuration error, exit 2.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("hubbub serve: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("hubbub serve: cannot listen on {wanted}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = server.is_tls();
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hubbub serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let banner = Banner {
        development,
        api_key,
        auth: auth_required,
        tls,
        dashboard: page,
    };
    print_banner(addr, &banner);
    if testing_echo {
        // Configuration refuses it outside development and off loopback.
        tracing::warn!(
            "!!! TESTING ECHO ENABLED at ws://{addr}/ and /echo: no auth, no origin check, \
             no rate limit, 64 MiB messages. For conformance suites only; never deploy this !!!"
        );
    }
    if development && !auth_required {
        tracing::warn!(
            "development mode: anonymous connections and ?user_id= are accepted{}; \
             use --mode production for deployments",
            if api_key {
                ""
            } else {
                ", and the HTTP API answers any loopback client without a key"
            }
        );
    } else if !auth_required {
        tracing::warn!("auth.required = false: anonymous WebSocket connections are accepted");
    }
    let served = server.run_until(shutdown).await;
    // The metrics store's last log flush and snapshot, off the workers.
    let _ = tokio::task::spawn_blocking(move || metrics.close()).await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hubbub serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The node on the engine `[engine]` names: exit 2 for a configuration
/// that cannot work, 1 when the engine's server does not answer; with the
/// applications installed, the metrics store to close once it stopped, and
/// the task queue (for the demo).
async fn build_node(
    config: Config,
    dashboard: hubbub_dashboard::DashboardConfig,
) -> Result<(Node, hubbub_metrics::Metrics, Option<hubbub_tasks::Tasks>), ExitCode> {
    let engine = match config.engine.kind {
        EngineKind::Memory => None,
        EngineKind::Redis => Some(hubbub_redis::engine(&config).await),
        EngineKind::Nats => Some(hubbub_nats::engine(&config).await),
    };
    let engine = match engine {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            eprintln!("hubbub serve: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let mut builder = Node::builder(config);
    if let Some(e) = engine {
        builder = builder.engine(e);
    }
    let node = builder.build().map_err(|e| {
        eprintln!("hubbub serve: {}", e.message);
        ExitCode::from(2)
    })?;
    // The applications the binary carries, on the library's public API.
    let jobs = hubbub_graph::JobsConfig::from_config(node.config()).map_err(|e| {
        eprintln!("hubbub serve: {e}");
        ExitCode::from(2)
    })?;
    hubbub_graph::install(&node, jobs);
    let tasks = hubbub_tasks::TasksConfig::from_config(node.config()).map_err(|e| {
        eprintln!("hubbub serve: {e}");
        ExitCode::from(2)
    })?;
    let tasks = hubbub_tasks::install(&node, tasks).map_err(|e| {
        eprintln!("hubbub serve: apps.tasks: {e}");
        ExitCode::FAILURE
    })?;
    let metrics = hubbub_metrics::MetricsConfig::from_config(node.config()).map_err(|e| {
        eprintln!("hubbub serve: {e}");
        ExitCode::from(2)
    })?;
    let metrics = hubbub_metrics::install(&node, metrics).map_err(|e| {
        eprintln!("hubbub serve: metrics store: {e}");
        ExitCode::FAILURE
    })?;
    let streams = hubbub_streams::StreamsConfig::from_config(node.config()).map_err(|e| {
        eprintln!("hubbub serve: {e}");
        ExitCode::from(2)
    })?;
    let streams = hubbub_streams::install(&node, streams);
    if let Some(feed) = crate::logging::log_feed() {
        streams.forward_logs(feed);
    }
    node.extend_api(crate::client_js::extension());
    hubbub_dashboard::install(&node, dashboard);
    Ok((node, metrics, tasks))
}

/// Completes on the first SIGTERM or SIGINT; a second one exits at once, for
/// an operator who will not wait for the drain deadline.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "draining connections; signal again to exit at once"
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::warn!("second signal: exiting without waiting for connections");
            std::process::exit(1);
        });
    })
}

/// What the banner needs to know of the node's settings.
#[derive(Clone, Copy)]
struct Banner {
    development: bool,
    api_key: bool,
    auth: bool,
    tls: bool,
    dashboard: bool,
}

/// Where to connect, on stdout: the one thing a user starting the hub needs
/// to read, and the line tests parse for the real port.
fn print_banner(addr: SocketAddr, b: &Banner) {
    let Banner {
        development,
        api_key,
        auth,
        tls,
        dashboard,
    } = *b;
    let host = SocketAddr::new(connectable(addr.ip()), addr.port());
    let s = if tls { "s" } else { "" };
    let ws = format!("ws{s}://{host}/ws");
    let http = format!("http{s}://{host}");
    let default = !tls && host == SocketAddr::from(([127, 0, 0, 1], 8000));
    let (sub_url, pub_url) = if default {
        (String::new(), String::new())
    } else {
        (format!(" --url {ws}"), format!(" --url {http}"))
    };
    let key = if api_key { " --api-key KEY" } else { "" };
    let token = if auth { " --token TOKEN" } else { "" };
    let mode = if development {
        "development"
    } else {
        "production"
    };
    let bin = invoked_as();
    let tokens = if auth {
        format!("\n  tokens     {bin} token --sub USER   (with this hub's auth settings)")
    } else {
        String::new()
    };
    let page = if dashboard {
        format!("  dashboard  {http}/\n")
    } else {
        String::new()
    };
    println!(
        "hubbub {} listening on {addr} ({mode} mode)\n  \
         WebSocket  {ws}\n  \
         HTTP API   {http}/api/\n  \
         metrics    {http}/metrics\n{page}  \
         try        {bin} subscribe demo{sub_url}{token}   and   \
         {bin} publish demo '{{\"hello\":\"world\"}}'{pub_url}{key}{tokens}",
        env!("CARGO_PKG_VERSION"),
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// How the user can run this binary again from where they are: `hubbub`
/// when it was found on the PATH, else the path it was started by
/// (`target/release/hubbub` under `cargo run`), relative where it can be.
fn invoked_as() -> String {
    let Some(arg0) = std::env::args_os().next().map(PathBuf::from) else {
        return "hubbub".into();
    };
    if arg0.components().count() <= 1 {
        return arg0.to_string_lossy().into_owned();
    }
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| arg0.strip_prefix(cwd).ok().map(PathBuf::from));
    relative.unwrap_or(arg0).to_string_lossy().into_owned()
}

/// The address a local client should dial for a wildcard bind.
fn connectable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServeArgs,
    }

    fn overrides(args: &[&str]) -> Vec<(String, String)> {
        let t = T::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap();
        t.a.sources().overrides
    }

    #[test]
    fn flags_become_overrides_after_set() {
        let o = overrides(&[
            "--set",
            "server.listen=0.0.0.0:1",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "12\"34",
            "--mode",
            "production",
            "--max-connections",
            "7",
            "--testing-echo",
        ]);
        let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            o,
            [
                ("server.listen", "0.0.0.0:1"),
                ("server.listen", "\"127.0.0.1:0\""),
                ("server.mode", "\"production\""),
                ("api.key", "\"12\\\"34\""),
                ("server.max_connections", "7"),
                ("server.testing_echo", "true"),
            ]
        );
    }

    #[test]
    fn flags_load() {
        let t = T::try_parse_from([
            "serve",
            "--api-key",
            "1234",
            "--mode",
            "production",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        let mut sources = t.a.sources();
        sources.env.clear();
        let c = Config::load(&sources).unwrap();
        assert_eq!(c.api.key.as_deref(), Some("1234"));
        assert!(!c.is_development());
        assert_eq!(c.server.listen.port(), 0);
    }

    #[test]
    fn bad_set_and_preset() {
        assert!(T::try_parse_from(["serve", "--set", "novalue"]).is_err());
        assert!(T::try_parse_from(["serve", "--preset", "huge"]).is_err());
        let t = T::try_parse_from(["serve", "--preset", "high-performance"]).unwrap();
        assert_eq!(t.a.preset, Some(Preset::HighPerformance));
    }

    #[test]
    fn wildcard_binds_print_loopback() {
        assert_eq!(
            connectable("0.0.0.0".parse().unwrap()),
            IpAddr::from([127, 0, 0, 1])
        );
        assert_eq!(
            connectable("::".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }
}
