//! `ps`, `events` and `update`: what runs in a sandbox, what it uses, and
//! the limits that can change while it runs.
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use sentry::control::{Reply, Request, Stats};

use crate::state::StateDir;
use crate::Cli;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format: table or json (the pids).
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id.
    pub id: String,
}

/// Running state of a container for commands that need one.
fn running(dir: &StateDir) -> Result<()> {
    let st = dir.read()?;
    if matches!(dir.status(&st).as_str(), "stopped" | "creating") {
        bail!("container not running");
    }
    Ok(())
}

pub fn ps(cli: &Cli, a: &PsArgs) -> Result<u8> {
    let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
    running(&dir)?;
    let Reply::Processes { list } = dir.request(Request::Processes)? else { bail!("unexpected reply") };
    if a.format == "json" {
        let pids: Vec<i32> = list.iter().map(|p| p.pid).collect();
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let mut rows = vec![["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(String::from).to_vec()];
    for p in &list {
        let secs = p.cpu_ms / 1000;
        let start = p.started_ms / 1000;
        rows.push(vec![
            p.uid.to_string(),
            p.pid.to_string(),
            p.ppid.to_string(),
            "0".into(),
            format!("{:02}:{:02}", start / 60 % 60, start % 60),
            "?".into(),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            p.comm.clone(),
        ]);
    }
    super::lifecycle::print_table(&rows);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print the resource usage once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print the resource usage.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id.
    pub id: String,
}

/// A duration as Go writes it: `5s`, `500ms`, `1m`, `2h` (or plain
/// seconds).
fn parse_duration(s: &str) -> Result<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration {s:?}"),
    };
    if secs.is_nan() || secs <= 0.0 {
        bail!("duration must be greater than 0");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn stats_event(id: &str, s: &Stats) -> serde_json::Value {
    serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {"usage": {"total": s.cpu_ns}},
            "memory": {"usage": {"usage": s.memory_bytes}},
            "pids": {"current": s.pids, "limit": s.pids_limit},
        }
    })
}

pub fn events(cli: &Cli, a: &EventsArgs) -> Result<u8> {
    let interval = parse_duration(&a.interval)?;
    loop {
        let stats = {
            let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
            running(&dir)?;
            match dir.request(Request::Stats) {
                Ok(Reply::Stats(s)) => s,
                _ => bail!("container not running"),
            }
        };
        println!("{}", stats_event(&a.id, &stats));
        if a.stats {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file of linux.resources (`-`: standard input).
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Most processes and threads (0 or -1: the sandbox's default).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Container id.
    pub id: String,
}

pub fn update(cli: &Cli, a: &UpdateArgs) -> Result<u8> {
    let mut pids_limit = a.pids_limit;
    if let Some(path) = &a.resources {
        let mut text = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin().read_to_string(&mut text)?;
        } else {
            text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        }
        let r: oci_spec::runtime::LinuxResources =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if let Some(p) = r.pids() {
            pids_limit = Some(p.limit());
        }
        if r.memory().is_some() || r.cpu().is_some() || r.block_io().is_some() {
            tracing::info!(target: "cordon::update", "memory, cpu and block I/O limits are not applied to the sandbox");
        }
    }
    let dir = StateDir::open_existing(&cli.root, &a.id, true)?;
    running(&dir)?;
    dir.request(Request::Update { pids_limit })?;
    Ok(0)
}
