//! The sandbox's own processes: the sentry runs in an empty root of its own
//! (it can open no host path; files reach it only from the gofer), stubs die
//! with the sentry, and `--strace` logs guest system calls.
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cordon_tests::{busybox_rootfs, cordon_command, unique_id, Process, Sandbox};

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // Field 4 (ppid) follows the parenthesised command name.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { continue };
        if rest.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// A stub done starting: traced by its task thread (ptrace platform), or
/// under the stub's seccomp filter (systrap, where a stub is traced only
/// while its mappings change).
fn stub_started(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1));
    field("TracerPid:").is_some_and(|v| v != "0") || field("Seccomp:") == Some("2")
}

fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

/// Waits until `cordon run` (pid `run`) has a sentry child with a stub
/// (forked by the sentry's stub template); returns the sentry, the
/// template and the stub.
fn wait_for_sentry(run: u32) -> (u32, u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for c in children_of(run) {
            if cmdline(c).contains(" boot ") {
                for template in children_of(c) {
                    if let Some(stub) = children_of(template).into_iter().find(|s| stub_started(*s)) {
                        return (c, template, stub);
                    }
                }
            }
        }
        sleep(Duration::from_millis(20));
    }
    panic!("no sentry with a stub appeared under cordon run {run}");
}

fn start_sleep(sb: &mut Sandbox, secs: &str) -> (std::process::Child, String) {
    sb.bundle.write_config(&Process::new(&["/bin/sleep", secs]));
    let id = unique_id(&sb.name);
    let mut cmd: Command = cordon_command(&sb.state_root, None);
    cmd.arg("run").arg("--bundle").arg(&sb.bundle.dir).arg(&id).stdout(Stdio::null()).stderr(Stdio::piped());
    (cmd.spawn().expect("spawn cordon run"), id)
}

#[test]
fn sentry_has_an_empty_root_and_no_host_mounts() {
    let mut sb = Sandbox::with_shared_rootfs("isolation-root", &busybox_rootfs());
    let (mut run, _id) = start_sleep(&mut sb, "2");
    let (sentry, template, stub) = wait_for_sentry(run.id());
    let root = Path::new("/proc").join(sentry.to_string()).join("root");
    let entries: Vec<_> = fs::read_dir(&root).expect("read sentry root").flatten().map(|e| e.file_name()).collect();
    assert!(entries.is_empty(), "the sentry's root must be empty, has {entries:?}");
    let mounts = fs::read_to_string(format!("/proc/{sentry}/mountinfo")).expect("mountinfo");
    assert_eq!(mounts.lines().count(), 1, "the sentry sees exactly its empty root:\n{mounts}");
    assert!(mounts.contains("cordon-sentry") && mounts.contains(" ro"), "{mounts}");
    // The stub's only own mapping is the stub page (guest memory is the
    // memory file, shown as memfd mappings); under systrap also one
    // 64 KiB context slot per thread (its signal stack and mailbox).
    let status = fs::read_to_string(format!("/proc/{stub}/status")).unwrap_or_default();
    let systrap = status.lines().any(|l| l.starts_with("Seccomp:") && l.ends_with('2'));
    let unexpected = || {
        let maps = fs::read_to_string(format!("/proc/{stub}/maps")).unwrap_or_default();
        maps.lines().map(str::to_string).find(|line| {
            let range: Vec<u64> =
                line.split(['-', ' ']).take(2).map(|a| u64::from_str_radix(a, 16).unwrap_or(0)).collect();
            let slot = systrap
                && line.contains("rw-s ")
                && line.contains("memfd:cordon-stub-contexts")
                && range[1].checked_sub(range[0]) == Some(0x10000);
            !(slot
                || line.contains("memfd:cordon-memory")
                || line.contains("[vsyscall]")
                || line.starts_with("7ff000000000-"))
        })
    };
    // A stub just forked may still be unmapping the template's page after
    // the stub page (its set-up is traced, and a traced stub counts as
    // started): wait for that, briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left = unexpected();
    while left.is_some() && Instant::now() < deadline {
        sleep(Duration::from_millis(10));
        left = unexpected();
    }
    assert!(left.is_none(), "unexpected mapping in the stub: {}", left.unwrap_or_default());
    // Its only fds are the memory file (not the template's request socket)
    // and, under systrap, the context file.
    let mut fds: Vec<String> = fs::read_dir(format!("/proc/{stub}/fd"))
        .expect("stub fds")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    let expected: &[&str] = if systrap { &["0", "2"] } else { &["0"] };
    assert_eq!(fds, expected, "the stub holds only the memory file (and the context file)");
    // The template keeps nothing of the sentry: its code page and one data
    // page for its request loop.
    let maps = fs::read_to_string(format!("/proc/{template}/maps")).unwrap_or_default();
    for line in maps.lines() {
        let ok = line.contains("[vsyscall]")
            || line.starts_with("7ff000000000-7ff000001000 r-xp")
            || line.starts_with("7ff000001000-7ff000002000 rw-p");
        assert!(ok, "unexpected mapping in the stub template: {line}");
    }
    // Host namespaces are not shared with the sentry.
    for ns in ["mnt", "net", "ipc", "uts"] {
        let mine = fs::read_link(format!("/proc/self/ns/{ns}")).expect("own ns");
        let its = fs::read_link(format!("/proc/{sentry}/ns/{ns}")).expect("sentry ns");
        assert_ne!(mine, its, "sentry shares the host's {ns} namespace");
    }
    let status = run.wait().expect("wait cordon");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stubs_die_with_the_sentry_and_nothing_is_left() {
    let mut sb = Sandbox::with_shared_rootfs("isolation-kill", &busybox_rootfs());
    let (mut run, id) = start_sleep(&mut sb, "30");
    let (sentry, template, stub) = wait_for_sentry(run.id());
    nix_kill(sentry);
    let status = run.wait().expect("wait cordon");
    assert_eq!(status.code(), Some(137), "cordon run reports the sentry's death by SIGKILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |p: u32| Path::new(&format!("/proc/{p}")).exists();
    while (alive(stub) || alive(template)) && Instant::now() < deadline {
        sleep(Duration::from_millis(10));
    }
    assert!(!alive(stub), "stub {stub} outlived its sentry");
    assert!(!alive(template), "stub template {template} outlived its sentry");
    assert!(!sb.state_root.join(&id).exists(), "state directory left behind");
    let leftovers: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| cmdline(*p).contains(sb.bundle.dir.to_string_lossy().as_ref()))
        .collect();
    assert!(leftovers.is_empty(), "processes left behind: {leftovers:?}");
}

#[test]
fn the_sandbox_dies_with_cordon_run() {
    let mut sb = Sandbox::with_shared_rootfs("isolation-runkill", &busybox_rootfs());
    let (mut run, _id) = start_sleep(&mut sb, "30");
    let (sentry, template, stub) = wait_for_sentry(run.id());
    let gofers: Vec<u32> = children_of(run.id()).into_iter().filter(|c| cmdline(*c).contains(" gofer ")).collect();
    nix_kill(run.id());
    let _ = run.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |p: u32| {
        fs::read_to_string(format!("/proc/{p}/stat"))
            .is_ok_and(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
    };
    let all: Vec<u32> = [sentry, template, stub].into_iter().chain(gofers).collect();
    while all.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        sleep(Duration::from_millis(10));
    }
    let left: Vec<u32> = all.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "sandbox processes outlived a killed `cordon run`: {left:?}");
}

fn nix_kill(pid: u32) {
    let st = Command::new("kill").arg("-KILL").arg(pid.to_string()).status().expect("kill");
    assert!(st.success());
}

#[test]
fn strace_logs_guest_system_calls_with_decoded_paths() {
    let sb = Sandbox::with_shared_rootfs("isolation-strace", &busybox_rootfs());
    sb.bundle.write_config(&Process::new(&["/bin/cat", "/etc/passwd"]));
    let logs = sb.tmp().join("strace-logs");
    let mut cmd = cordon_command(&sb.state_root, None);
    cmd.arg("--strace").arg("--debug-log").arg(&logs);
    cmd.arg("run").arg("--bundle").arg(&sb.bundle.dir).arg(unique_id("strace"));
    let out = cmd.output().expect("run cordon");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut sentry_log = String::new();
    for e in fs::read_dir(&logs).expect("log dir").flatten() {
        if e.file_name().to_string_lossy().starts_with("sentry.") {
            sentry_log = fs::read_to_string(e.path()).expect("read log");
        }
    }
    assert!(sentry_log.contains("\"/etc/passwd\""), "strace shows the decoded path:\n{sentry_log}");
    assert!(sentry_log.contains("exit_group(0"), "strace shows exit_group:\n{sentry_log}");
    // busybox cat writes with sendfile where it can, else write.
    let wrote = |l: &str| (l.contains("write(1, ") || l.contains("sendfile(1, ")) && l.contains(" = 0x");
    assert!(sentry_log.lines().any(wrote), "{sentry_log}");
}

#[test]
fn sigterm_to_cordon_run_reaches_the_container_init() {
    let sb = Sandbox::with_shared_rootfs("isolation-sigterm", &busybox_rootfs());
    sb.bundle.write_config(&Process::sh("trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.05; done"));
    let id = unique_id(&sb.name);
    let mut cmd: Command = cordon_command(&sb.state_root, None);
    cmd.arg("run").arg("--bundle").arg(&sb.bundle.dir).arg(&id).stdout(Stdio::piped());
    let mut run = cmd.spawn().expect("spawn cordon run");
    let mut out = run.stdout.take().expect("stdout");
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut first).expect("read ready");
    assert_eq!(&first, b"ready\n");
    let st = Command::new("kill").arg("-TERM").arg(run.id().to_string()).status().expect("kill");
    assert!(st.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read rest");
    let status = run.wait().expect("wait");
    assert_eq!(rest, "got TERM\n");
    assert_eq!(status.code(), Some(5), "the container's handler decides the exit status");
    assert!(!sb.state_root.join(&id).exists(), "state directory left behind");
}

#[test]
fn fork_bomb_ends_with_eagain_not_a_dead_host() {
    let sb = Sandbox::new("isolation-forkbomb");
    let prog = cordon_tests::compile_program("forkbomb");
    cordon_tests::install_file(sb.rootfs(), "/prog", &prog, 0o755);
    // The spec's pids limit caps processes (here 150: init and 149 children).
    let mut config = cordon_tests::oci_config(&Process::new(&["/prog"]), "rootfs");
    config["linux"]["resources"] = serde_json::json!({ "pids": { "limit": 150 } });
    sb.bundle.write_config_value(&config);
    let id = unique_id(&sb.name);
    let out = cordon_tests::run_cordon(&sb.state_root, &sb.bundle.dir, &id, None);
    assert_eq!(out.stdout_str(), "forks=149 err=EAGAIN reaped_all=1\n", "{}", out.stderr_str());
}
