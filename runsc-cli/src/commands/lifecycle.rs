//! `start`, `state`, `list`, `kill`, `delete`, `pause`, `resume` and
//! `wait`: a created sandbox driven through its control socket, with
//! runc's arguments, output and error messages.
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use sentry::control::{Reply, Request};

use crate::state::{kill_and_wait, list_ids, ContainerState, OciState, StateDir};
use crate::Cli;

#[derive(Args, Debug)]
pub struct IdArgs {
    /// Container id.
    pub id: String,
}

pub fn start(cli: &Cli, a: &IdArgs) -> Result<u8> {
    let dir = StateDir::open_existing(&cli.root, &a.id, true)?;
    let st = dir.read()?;
    match dir.status(&st).as_str() {
        "stopped" => bail!("cannot start a container that has stopped"),
        "creating" => bail!("cannot start a container that is still being created"),
        _ => {}
    }
    dir.request(Request::Start)?;
    let mut st = st;
    st.status = "running".into();
    dir.write(&st)?;
    Ok(0)
}

fn oci_state<'a>(st: &'a ContainerState, status: &'a str) -> OciState<'a> {
    OciState {
        oci_version: &st.oci_version,
        id: &st.id,
        pid: if status == "stopped" { 0 } else { st.pid },
        status,
        bundle: &st.bundle,
        rootfs: &st.rootfs,
        created: &st.created,
        owner: &st.owner,
        annotations: &st.annotations,
    }
}

pub fn state(cli: &Cli, a: &IdArgs) -> Result<u8> {
    let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
    let st = dir.read()?;
    let status = dir.status(&st);
    println!("{}", serde_json::to_string_pretty(&oci_state(&st, &status))?);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format: table or json.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the container ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn list(cli: &Cli, a: &ListArgs) -> Result<u8> {
    let mut rows = Vec::new();
    for id in list_ids(&cli.root) {
        let Ok(Some(dir)) = StateDir::open(&cli.root, &id, false) else { continue };
        let Ok(st) = dir.read() else { continue };
        let status = dir.status(&st);
        rows.push((st, status));
    }
    if a.quiet {
        for (st, _) in &rows {
            println!("{}", st.id);
        }
        return Ok(0);
    }
    if a.format == "json" {
        let list: Vec<OciState> = rows.iter().map(|(st, s)| oci_state(st, s)).collect();
        println!("{}", serde_json::to_string(&list)?);
        return Ok(0);
    }
    let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
    for (st, status) in &rows {
        let pid = if status == "stopped" { 0 } else { st.pid };
        table.push(vec![
            st.id.clone(),
            pid.to_string(),
            status.clone(),
            st.bundle.display().to_string(),
            st.created.clone(),
            if st.owner.is_empty() { "root".into() } else { st.owner.clone() },
        ]);
    }
    print_table(&table);
    Ok(0)
}

/// Prints rows in columns padded like runc's tabwriter (at least 12
/// wide, 3 spaces apart).
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(String::len).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = (widths[c] + 3).max(12)));
            }
        }
        println!("{}", line.trim_end());
    }
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal: a number or a name (KILL, SIGKILL); default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// A signal given as a number or a name, as runc parses it.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal number {n}");
    }
    let upper = s.to_ascii_uppercase();
    let name = format!("SIG{}", upper.strip_prefix("SIG").unwrap_or(&upper));
    match name.parse::<nix::sys::signal::Signal>() {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("unknown signal {s:?}"),
    }
}

pub fn kill(cli: &Cli, a: &KillArgs) -> Result<u8> {
    let signal = parse_signal(&a.signal)?;
    let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
    let st = dir.read()?;
    let status = dir.status(&st);
    if a.all && status == "stopped" {
        // Every process of a stopped container is gone already (runc
        // signals what is left in the cgroup, which is nothing).
        return Ok(0);
    }
    if matches!(status.as_str(), "stopped" | "creating") {
        bail!("container not running");
    }
    dir.request(Request::Signal { signal, all: a.all })?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it runs; a missing container is no
    /// error.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Container id.
    pub id: String,
}

pub fn delete(cli: &Cli, a: &DeleteArgs) -> Result<u8> {
    let Some(dir) = StateDir::open(&cli.root, &a.id, true)? else {
        if a.force {
            return Ok(0);
        }
        return Err(crate::state::not_found(&a.id));
    };
    let st = dir.read().unwrap_or_default();
    let status = dir.status(&st);
    if matches!(status.as_str(), "running" | "paused") && !a.force {
        bail!("cannot delete container {} that is not stopped: {status}", a.id);
    }
    // Nothing of the sandbox outlives its state: the sentry (whose stubs
    // die with it), then any gofer still there.
    kill_and_wait(st.pid, st.sentry_start, Duration::from_secs(5));
    for &(pid, start) in &st.gofers {
        kill_and_wait(pid, start, Duration::from_secs(5));
    }
    if dir.in_pod() {
        // The pod's sentry kills what is left of the container (its stand-in
        // gone) and forgets it: wait for that, so that the id can be
        // created again at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while dir.request(Request::State).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    dir.remove()?;
    Ok(0)
}

pub fn pause(cli: &Cli, a: &IdArgs, pause: bool) -> Result<u8> {
    let dir = StateDir::open_existing(&cli.root, &a.id, true)?;
    let st = dir.read()?;
    match (dir.status(&st).as_str(), pause) {
        ("running", true) | ("paused", false) => {}
        (_, true) => bail!("container not running"),
        (_, false) => bail!("container not paused"),
    }
    dir.request(if pause { Request::Pause } else { Request::Resume })?;
    let mut st = st;
    st.status = if pause { "paused" } else { "running" }.into();
    dir.write(&st)?;
    Ok(0)
}

/// `cordon wait`: waits for the container's init to end, and exits with
/// its status (128 + the signal that killed it).
pub fn wait(cli: &Cli, a: &IdArgs) -> Result<u8> {
    let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
    let st = dir.read()?;
    let status = if crate::state::alive(st.pid, st.sentry_start) {
        // Let go of the lock while waiting.
        let req = dir.for_container(Request::Wait);
        let conn = dir.connect();
        drop(dir);
        let reply = conn.and_then(|c| {
            c.send(&req, &[])?;
            Ok(c.recv::<Reply>()?.0)
        });
        match reply {
            Ok(Reply::Exited { wait_status }) => wait_status,
            _ => {
                let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
                wait_for_exit_file(&dir)?
            }
        }
    } else {
        wait_for_exit_file(&dir)?
    };
    Ok(shell_code(status))
}

fn wait_for_exit_file(dir: &StateDir) -> Result<i32> {
    for _ in 0..500 {
        if let Some(s) = dir.exit_status() {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("container {} ended without an exit status", dir.id)
}

/// A wait(2) status as a shell reports it.
pub fn shell_code(wait_status: i32) -> u8 {
    if wait_status & 0x7f == 0 {
        ((wait_status >> 8) & 0xff) as u8
    } else {
        (128 + (wait_status & 0x7f)) as u8
    }
}
