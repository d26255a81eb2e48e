//! `hubbub bench sweep`: the highest rate a hub keeps up with.
//!
//! One set of subscribers (opened once, as `fanout` opens them) and a list
//! of rates tried in rising order. Each rate gets a warm-up, then
//! `--repetitions` windows of `--duration`, then a drain; the parent then
//! asks the workers for their histograms so far (a snapshot) and judges the
//! rate: kept up when the median p99 is within `--p99-max-ms`, nothing is
//! missing or failed, nobody was dropped and the publishers reached the
//! rate. The sweep stops after the first rate not kept up unless
//! `--keep-going`. Window tags run on across rates, so every window keeps
//! its own histogram in the workers.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use tokio::sync::mpsc;

use super::coordinate::{apis_joined, fill_window, Run};
use super::parent::{parent_runtime, process_links, thread_links, Ev, Link};
use super::report::{exit_status, write_report};
use super::setup::Setup;
use super::sweep_report::{print_sweep, RateReport, SweepReport};
use super::{Kind, LoadArgs};

/// Options of `hubbub bench sweep`: every `fanout` flag except `--rate`,
/// and the rates to try. Exists as its own clap struct so the sweep's
/// flags stay out of the other scenarios' `--help`.
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// The fan-out every rate runs (subscribers, payload, protocol, ...).
    #[command(flatten)]
    pub load: LoadArgs,
    /// Publishes per second to try, comma-separated (tried in rising
    /// order), e.g. `50,100,200,300,400`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub rates: Vec<f64>,
    /// A rate is kept up when its median p99 (publish to receive) is at
    /// most this many milliseconds, and nothing is missing.
    #[arg(long, default_value_t = 10.0)]
    pub p99_max_ms: f64,
    /// Try every rate, also after one was not kept up.
    #[arg(long)]
    pub keep_going: bool,
}

impl SweepArgs {
    /// Every default with these rates, as if given only `--rates`. Exists
    /// for tests.
    pub fn new(url: impl Into<String>, rates: Vec<f64>) -> Self {
        SweepArgs {
            load: LoadArgs::new(url),
            rates,
            p99_max_ms: 10.0,
            keep_going: false,
        }
    }

    /// The rates in the order tried (rising, each once), or why not.
    fn checked_rates(&self) -> anyhow::Result<Vec<f64>> {
        if self.load.rate.is_some() {
            bail!("--rate does not apply to a sweep: give --rates");
        }
        if !(self.p99_max_ms.is_finite() && self.p99_max_ms > 0.0) {
            bail!("--p99-max-ms must be a number > 0");
        }
        let mut rates = self.rates.clone();
        if rates.is_empty() || rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
            bail!("--rates must be publishes per second > 0, e.g. --rates 50,100,200");
        }
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        Ok(rates)
    }
}

/// The sweep over `links` (the workers of `setup`, already started).
async fn sweep(
    setup: Setup,
    sweep: SweepArgs,
    rates: Vec<f64>,
    links: Vec<Link>,
    rx: mpsc::UnboundedReceiver<Ev>,
    progress: bool,
) -> SweepReport {
    let per_publish = setup.subscribers as f64 / setup.channels as f64;
    let mut run = Run::new(setup, sweep.load.clone(), links, rx, progress);
    run.ramp_up().await;
    let (base, args) = (run.setup.clone(), run.args.clone());
    let mut results: Vec<RateReport> = Vec::new();
    let mut stopped_early = None;
    let mut tag = 0u32;
    for (i, &rate) in rates.iter().enumerate() {
        if run.stopped() {
            break;
        }
        let setup = Arc::new(Setup {
            rate,
            ..(*base).clone()
        });
        run.say(format!("rate {rate}/s ({}/{})", i + 1, rates.len()));
        run.warm_up(&setup).await;
        let first = tag + 1;
        let mut windows = Vec::new();
        for win in setup.windows(args.repetitions) {
            if run.stopped() {
                break;
            }
            tag += 1;
            run.say(format!(
                "rate {rate}/s: window {}/{}: {} s",
                win.rep + 1,
                args.repetitions,
                args.duration
            ));
            windows.push(run.window(&setup, tag, win).await);
        }
        let complete = !run.stopped() && windows.len() == args.repetitions as usize;
        run.drain(if complete { args.drain } else { 1.0 }).await;
        let (per_window, dropped) = run.snapshot().await;
        for (k, w) in windows.iter_mut().enumerate() {
            fill_window(w, first + k as u32, &per_window);
        }
        let r = RateReport::new(
            rate,
            per_publish,
            windows,
            dropped,
            complete,
            sweep.p99_max_ms,
        );
        run.end_line();
        if progress {
            eprintln!(
                "rate {rate}/s: {:.0} deliveries/s, p99 {:.2} ms, {} missing: {}",
                r.median.deliveries_per_second, r.median.p99_ms, r.missing, r.verdict
            );
        }
        let go_on = r.kept_up || sweep.keep_going || !complete;
        if !go_on && i + 1 < rates.len() {
            stopped_early = Some(format!("{rate} publishes/s: {}", r.verdict));
        }
        results.push(r);
        if !go_on {
            break;
        }
    }
    let interrupted = run.stopped();
    let done = run.finish().await;
    SweepReport {
        scenario: "sweep",
        url: base.urls.join(","),
        api: apis_joined(&base),
        urls: base.urls.clone(),
        nodes: base.nodes(),
        via: args.via,
        protocol: args.protocol,
        subscribers: base.subscribers,
        subscribed: done.subscribed,
        subscribe_failures: done.subscribe_failures,
        dropped: done.dropped,
        channels: base.channels,
        payload_bytes: args.payload,
        publishers: base.publishers,
        workers: base.workers,
        warmup_seconds: args.warmup,
        duration_seconds: args.duration,
        repetitions: args.repetitions,
        p99_max_ms: sweep.p99_max_ms,
        keep_going: sweep.keep_going,
        rates_asked: rates,
        highest_kept_up: SweepReport::highest(&results),
        rates: results,
        stopped_early,
        interrupted,
        server_pid: done.servers.first_pid(),
        server_processes: done.servers.procs.clone(),
        unparsed_events: done.unparsed,
        worker_errors: done.worker_errors,
        notes: done.servers.notes,
        host: done.host,
    }
}

/// Checks the flags and resolves the fan-out every rate runs.
fn prepare(a: &SweepArgs) -> anyhow::Result<(Setup, Vec<f64>)> {
    let rates = a.checked_rates()?;
    let setup = Setup::new(Kind::Fanout, &a.load)?;
    if setup.subscribers == 0 {
        bail!("a sweep needs subscribers (--subscribers > 0)");
    }
    Ok((setup, rates))
}

/// Runs a sweep with its workers as threads of this process instead of
/// processes. Exists for tests; returns the same report (and writes
/// `--out`).
pub async fn run_sweep_in_process(args: SweepArgs) -> anyhow::Result<SweepReport> {
    let mut args = args;
    args.load.workers = Some(args.load.workers.unwrap_or(1));
    let (setup, rates) = prepare(&args)?;
    let (links, rx) = thread_links(&setup, &args.load);
    let out = args.load.out.clone();
    let report = sweep(setup, args, rates, links, rx, false).await;
    if let Some(p) = &out {
        write_report(p, &report)?;
    }
    Ok(report)
}

/// The CLI entry of `hubbub bench sweep`: the table, the closing line,
/// `--out`, and the exit status (0 when the sweep ran, whatever the rates'
/// verdicts; 1 when subscribers or workers failed; 2 when it could not
/// start; 130 when interrupted, after printing what it had).
pub(crate) fn run_sweep_cli(args: SweepArgs) -> ExitCode {
    let (setup, rates) = match prepare(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("hubbub bench sweep: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match parent_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub bench: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let out = args.load.out.clone();
    let result = rt.block_on(async move {
        // The workers are fanout workers: a sweep differs only in the parent.
        let (links, rx) = process_links(Kind::Fanout, &setup, &args.load)?;
        anyhow::Ok(sweep(setup, args, rates, links, rx, true).await)
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hubbub bench sweep: {e:#}");
            return ExitCode::from(2);
        }
    };
    print_sweep(&report);
    if let Some(p) = &out {
        if let Err(e) = write_report(p, &report) {
            eprintln!("hubbub bench sweep: {e:#}");
            return ExitCode::from(2);
        }
    }
    exit_status(report.interrupted, report.clean())
}
