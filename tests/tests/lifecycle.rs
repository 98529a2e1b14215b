//! The OCI lifecycle through the CLI, as containerd's runc shim drives it:
//! create / start / state / kill / wait / delete, exec (attached and
//! detached), ps, pause / resume, events, update, the errors the shim
//! understands, concurrent calls on one id, and a crashed sandbox; and
//! after each, nothing left behind.
//!
//! The test process makes itself a child subreaper, as the shim is, so
//! that the host processes `create` and `exec --detach` leave (the pid
//! file's) become its children and their exit status can be read.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon_tests::{assert_nothing_left, busybox_rootfs, cordon_command, reap, unique_id, Process, Sandbox};

/// A sandbox on the shared busybox rootfs, with this process a subreaper.
fn lifecycle_sandbox(name: &str) -> Sandbox {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
    Sandbox::with_shared_rootfs(name, &busybox_rootfs())
}

/// Deletes every container a test leaves, passed or failed.
struct DeleteAll(PathBuf);

impl Drop for DeleteAll {
    fn drop(&mut self) {
        cordon_tests::delete_all_containers(&self.0);
    }
}

/// The result of one `cordon` command.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cordon --root <state> ARGS` (stdin empty), its output captured
/// through files so that a sandbox inheriting them cannot hold us up.
fn cordon(sb: &Sandbox, args: &[&str]) -> Out {
    let dir = sb.tmp().join(format!("out-{}", unique_id("o")));
    fs::create_dir_all(&dir).expect("mkdir");
    let (o, e) = (dir.join("stdout"), dir.join("stderr"));
    let mut cmd = cordon_command(&sb.state_root, sb.log_dir.as_deref());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).expect("stdout file"))
        .stderr(fs::File::create(&e).expect("stderr file"));
    let mut child = cmd.spawn().expect("spawn cordon");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cordon {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = Out {
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(&o).unwrap_or_default(),
        stderr: fs::read_to_string(&e).unwrap_or_default(),
    };
    assert!(!out.stderr.contains("panicked"), "cordon {args:?} panicked:\n{}", out.stderr);
    out
}

/// Runs `cordon ARGS` and asserts it succeeded.
fn ok(sb: &Sandbox, args: &[&str]) -> String {
    let out = cordon(sb, args);
    assert_eq!(out.code, 0, "cordon {args:?} failed:\n{}{}", out.stdout, out.stderr);
    out.stdout
}

/// Runs `cordon ARGS` and asserts it failed with `msg` on stderr.
fn fails(sb: &Sandbox, args: &[&str], msg: &str) {
    let out = cordon(sb, args);
    assert_ne!(out.code, 0, "cordon {args:?} should fail:\n{}", out.stdout);
    assert!(out.stderr.contains(msg), "cordon {args:?}: stderr lacks {msg:?}:\n{}", out.stderr);
}

/// `cordon create` of `process` with the container's stdout and stderr
/// going to `tmp/<id>.out`; returns the id and the pid-file pid.
fn create(sb: &Sandbox, process: &Process) -> (String, i32) {
    sb.bundle.write_config(process);
    let id = unique_id(&sb.name);
    let pid_file = sb.tmp().join(format!("{id}.pid"));
    let out_file = sb.tmp().join(format!("{id}.out"));
    let mut cmd = cordon_command(&sb.state_root, sb.log_dir.as_deref());
    cmd.arg("create").arg("--bundle").arg(&sb.bundle.dir).arg("--pid-file").arg(&pid_file).arg(&id);
    let out = fs::File::create(&out_file).expect("out file");
    cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("dup")).stderr(out);
    let status = cmd.status().expect("spawn cordon create");
    assert!(status.success(), "cordon create failed: {}", fs::read_to_string(&out_file).unwrap_or_default());
    let pid = fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
    (id, pid)
}

fn container_output(sb: &Sandbox, id: &str) -> String {
    fs::read_to_string(sb.tmp().join(format!("{id}.out"))).unwrap_or_default()
}

fn state(sb: &Sandbox, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(sb, &["state", id])).expect("state JSON")
}

fn status_of(sb: &Sandbox, id: &str) -> String {
    state(sb, id)["status"].as_str().unwrap_or_default().to_string()
}

/// Host process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(") ").next().map(|r| !r.starts_with('Z') && !r.starts_with('X')))
        .unwrap_or(false)
}

/// The sandbox's host processes recorded in the state (sentry, gofers).
fn sandbox_pids(sb: &Sandbox, id: &str) -> Vec<i32> {
    let text = fs::read_to_string(sb.state_root.join(id).join("state.json")).expect("state.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("state.json JSON");
    let mut pids = vec![v["pid"].as_i64().unwrap_or(0) as i32];
    for g in v["gofers"].as_array().into_iter().flatten() {
        pids.push(g[0].as_i64().unwrap_or(0) as i32);
    }
    pids
}

/// `delete` of a stopped container, then nothing of it is left.
fn delete_and_check(sb: &Sandbox, id: &str) {
    let pids = sandbox_pids(sb, id);
    ok(sb, &["delete", id]);
    assert_gone(sb, id, &pids);
}

fn assert_gone(sb: &Sandbox, id: &str, pids: &[i32]) {
    assert_nothing_left(&sb.state_root, id);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "sandbox processes left behind: {pids:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const LOOP: &str = "trap 'echo got TERM; exit 3' TERM; echo started; while :; do sleep 0.05; done";

#[test]
fn create_start_kill_wait_delete() {
    let sb = lifecycle_sandbox("lc-basic");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let (id, pid) = create(&sb, &Process::sh(LOOP));
    let pids = sandbox_pids(&sb, &id);
    let st = state(&sb, &id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"].as_i64(), Some(i64::from(pid)), "state pid is the pid file's");
    assert_eq!(st["id"], id.as_str());
    assert!(st["created"].as_str().is_some_and(|c| c.ends_with('Z')), "created time: {st}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(container_output(&sb, &id), "", "init ran before start");

    let list = ok(&sb, &["list"]);
    assert!(list.starts_with("ID") && list.contains(&id) && list.contains("created"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&ok(&sb, &["list", "--format", "json"])).expect("list JSON");
    assert!(json.as_array().is_some_and(|a| a.iter().any(|c| c["id"] == id.as_str())), "{json}");

    ok(&sb, &["start", &id]);
    assert_eq!(status_of(&sb, &id), "running");
    fails(&sb, &["start", &id], "already running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !container_output(&sb, &id).contains("started") {
        assert!(Instant::now() < deadline, "init did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ps: Vec<i64> = serde_json::from_str(&ok(&sb, &["ps", "--format", "json", &id])).expect("ps JSON");
    assert!(ps.contains(&1), "ps lists init: {ps:?}");
    let table = ok(&sb, &["ps", &id]);
    assert!(table.starts_with("UID") && table.contains(" sh"), "{table}");

    // A waiter, then the signal: init's trap exits 3.
    let mut waiter = cordon_command(&sb.state_root, None);
    let mut waiter = waiter.arg("wait").arg(&id).spawn().expect("spawn wait");
    ok(&sb, &["kill", &id, "TERM"]);
    assert_eq!(waiter.wait().expect("wait").code(), Some(3), "cordon wait gives init's status");
    let status = reap(pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3, "pid-file process status {status:#x}");
    assert!(container_output(&sb, &id).contains("got TERM"));
    assert_eq!(status_of(&sb, &id), "stopped");
    assert_eq!(state(&sb, &id)["pid"], 0);
    fails(&sb, &["kill", &id, "KILL"], "container not running");
    ok(&sb, &["kill", "--all", &id, "KILL"]);
    fails(&sb, &["start", &id], "stopped");
    ok(&sb, &["delete", &id]);
    assert_gone(&sb, &id, &pids);
    fails(&sb, &["delete", &id], &format!("container \"{id}\" does not exist"));
    ok(&sb, &["delete", "--force", &id]);
}

#[test]
fn the_pid_file_process_dies_by_the_signal_that_killed_init() {
    let sb = lifecycle_sandbox("lc-signal");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let (id, pid) = create(&sb, &Process::sh("echo up; while :; do sleep 0.05; done"));
    ok(&sb, &["start", &id]);
    // Init ignores TERM without a handler (pid 1), not KILL.
    ok(&sb, &["kill", &id, "15"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status_of(&sb, &id), "running", "init without a handler ignores SIGTERM");
    ok(&sb, &["kill", &id, "SIGKILL"]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    delete_and_check(&sb, &id);
}

#[test]
fn a_container_killed_before_start_never_runs() {
    let sb = lifecycle_sandbox("lc-prestart");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let (id, pid) = create(&sb, &Process::sh("echo should-not-run"));
    ok(&sb, &["kill", &id, "KILL"]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    assert_eq!(status_of(&sb, &id), "stopped");
    assert_eq!(container_output(&sb, &id), "");
    // Deleting a created container kills it, as runc's delete does.
    let (id2, pid2) = create(&sb, &Process::sh("echo should-not-run"));
    delete_and_check(&sb, &id2);
    let _ = reap(pid2);
    ok(&sb, &["delete", &id]);
    assert_eq!(container_output(&sb, &id2), "");
}

#[test]
fn exec_runs_in_the_same_sandbox() {
    let sb = lifecycle_sandbox("lc-exec");
    let _cleanup = DeleteAll(sb.state_root.clone());
    // No transient processes: ps counts stay put but for the exec'd ones.
    let (id, pid) = create(&sb, &Process::sh("sleep 1000 & wait"));
    ok(&sb, &["start", &id]);
    // The argv form: the process sees the sandbox's pid namespace and
    // files, and its status is ours.
    let out = cordon(&sb, &["exec", "--env", "WHO=exec", &id, "sh", "-c", "echo $WHO $$; kill -0 1 && echo 1; exit 7"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"exec"), "{}", out.stdout);
    assert!(words.get(1).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| p > 1), "{}", out.stdout);
    assert_eq!(words.get(2), Some(&"1"), "init is visible: {}", out.stdout);
    // The --process form, as the shim calls it.
    let process = serde_json::json!({
        "args": ["sh", "-c", "echo from-json $X; pwd"],
        "env": ["X=1", "PATH=/bin:/usr/bin"],
        "cwd": "/tmp",
        "user": {"uid": 0, "gid": 0},
    });
    let pfile = sb.tmp().join("process.json");
    fs::write(&pfile, process.to_string()).expect("process.json");
    let out = ok(&sb, &["exec", "--process", pfile.to_str().expect("path"), &id]);
    assert_eq!(out, "from-json 1\n/tmp\n");
    fails(&sb, &["exec", &id, "/no/such/program"], "no such file");

    // Detached: the pid file names a host process that lives as long as
    // the guest process and ends as it does.
    let process = serde_json::json!({"args": ["sleep", "1000"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin:/usr/bin"]});
    fs::write(&pfile, process.to_string()).expect("process.json");
    let epid = exec_detached(&sb, &pfile, &id);
    let before: Vec<i64> = serde_json::from_str(&ok(&sb, &["ps", "--format", "json", &id])).expect("ps");
    assert_eq!(before.len(), 3, "the exec'd process shows in ps: {before:?}");
    assert!(alive(epid));
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(epid, libc::SIGTERM) };
    let status = reap(epid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM, "status {status:#x}");
    let after: Vec<i64> = serde_json::from_str(&ok(&sb, &["ps", "--format", "json", &id])).expect("ps");
    assert!(after.len() < before.len(), "the exec'd process is gone: {before:?} -> {after:?}");

    // SIGKILL of the stand-in takes the guest process with it.
    let epid = exec_detached(&sb, &pfile, &id);
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(epid, libc::SIGKILL) };
    let _ = reap(epid);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Vec<i64> = serde_json::from_str(&ok(&sb, &["ps", "--format", "json", &id])).expect("ps");
        if now.len() < before.len() {
            break;
        }
        assert!(Instant::now() < deadline, "guest process outlived its stand-in: {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A detached exec whose container ends is killed with it.
    let epid = exec_detached(&sb, &pfile, &id);
    ok(&sb, &["kill", &id, "KILL"]);
    let status = reap(epid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    let _ = reap(pid);
    fails(&sb, &["exec", &id, "true"], "stopped");
    delete_and_check(&sb, &id);
}

/// `cordon exec --process FILE --detach --pid-file` in container `id`;
/// returns the pid file's pid.
fn exec_detached(sb: &Sandbox, process: &Path, id: &str) -> i32 {
    let pid_file = sb.tmp().join("exec.pid");
    let (p, f) = (process.to_str().expect("path"), pid_file.to_str().expect("path"));
    ok(sb, &["exec", "--process", p, "--detach", "--pid-file", f, id]);
    fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid")
}

fn lines(path: &Path) -> usize {
    fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

#[test]
fn pause_stops_every_process_until_resume() {
    let sb = lifecycle_sandbox("lc-pause");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let (id, pid) = create(&sb, &Process::sh("while :; do echo tick; sleep 0.02; done"));
    let out: PathBuf = sb.tmp().join(format!("{id}.out"));
    fails(&sb, &["pause", &id], "not running");
    ok(&sb, &["start", &id]);
    std::thread::sleep(Duration::from_millis(200));
    fails(&sb, &["resume", &id], "not paused");
    ok(&sb, &["pause", &id]);
    assert_eq!(status_of(&sb, &id), "paused");
    fails(&sb, &["exec", &id, "true"], "paused");
    std::thread::sleep(Duration::from_millis(100));
    let frozen = lines(&out);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&out), frozen, "a paused container made progress");
    ok(&sb, &["resume", &id]);
    assert_eq!(status_of(&sb, &id), "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&out) <= frozen {
        assert!(Instant::now() < deadline, "a resumed container made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A paused container can still be killed.
    ok(&sb, &["pause", &id]);
    ok(&sb, &["kill", &id, "KILL"]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    delete_and_check(&sb, &id);
}

#[test]
fn events_report_usage_and_update_changes_the_pids_limit() {
    let sb = lifecycle_sandbox("lc-events");
    let _cleanup = DeleteAll(sb.state_root.clone());
    // An init that never forks: the pids counted below are exactly the
    // exec'd ones, whatever the scheduling (a looping init's own fork may hit
    // the limit, and a shell that cannot fork exits).
    let (id, pid) = create(&sb, &Process::sh("exec sleep 100000"));
    ok(&sb, &["start", &id]);
    let ev: serde_json::Value = serde_json::from_str(ok(&sb, &["events", "--stats", &id]).trim()).expect("event JSON");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    assert!(ev["data"]["pids"]["current"].as_u64().is_some_and(|n| n >= 1), "{ev}");
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().is_some_and(|n| n > 0), "{ev}");
    let res = sb.tmp().join("resources.json");
    fs::write(&res, r#"{"pids": {"limit": 3}}"#).expect("resources");
    ok(&sb, &["update", "--resources", res.to_str().expect("path"), &id]);
    let ev: serde_json::Value = serde_json::from_str(ok(&sb, &["events", "--stats", &id]).trim()).expect("event JSON");
    assert_eq!(ev["data"]["pids"]["limit"], 3, "{ev}");
    // The new limit holds: init, the exec'd shell and its first sleep make
    // three, so the second sleep's fork fails.
    let out = cordon(&sb, &["exec", &id, "sh", "-c", "sleep 1 & sleep 1 & sleep 1 & wait"]);
    assert!(out.stderr.contains("fork") || out.code != 0, "the pids limit did not hold: {}{}", out.stdout, out.stderr);
    // An exec'd process counts against the limit like a fork.
    ok(&sb, &["update", "--pids-limit", "1", &id]);
    fails(&sb, &["exec", &id, "true"], "pids limit");
    ok(&sb, &["update", "--pids-limit", "100", &id]);
    ok(&sb, &["exec", &id, "true"]);
    ok(&sb, &["kill", &id, "KILL"]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    delete_and_check(&sb, &id);
}

#[test]
fn errors_are_the_ones_the_shim_understands() {
    let sb = lifecycle_sandbox("lc-errors");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let id = unique_id("lc-missing");
    for cmd in ["state", "start", "kill", "delete", "pause", "resume", "ps", "wait"] {
        fails(&sb, &[cmd, &id], &format!("container \"{id}\" does not exist"));
    }
    ok(&sb, &["delete", "--force", &id]);
    fails(&sb, &["kill", "bad/id"], "invalid container id");
    let log = sb.tmp().join("log.json");
    let out = cordon(&sb, &["--log", log.to_str().expect("path"), "--log-format", "json", "kill", &id, "KILL"]);
    assert_ne!(out.code, 0);
    let text = fs::read_to_string(&log).expect("log file");
    let line: serde_json::Value = serde_json::from_str(text.lines().last().expect("a log line")).expect("JSON log");
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().is_some_and(|m| m.contains("does not exist")), "{line}");
    let (id, pid) = create(&sb, &Process::sh(LOOP));
    fails(&sb, &["kill", &id, "NOSUCHSIG"], "signal");
    ok(&sb, &["start", &id]);
    fails(&sb, &["delete", &id], "not stopped");
    sb.bundle.write_config(&Process::sh("true"));
    let dup = cordon(&sb, &["create", "--bundle", sb.bundle.dir.to_str().expect("path"), &id]);
    assert!(dup.code != 0 && dup.stderr.contains("already exists"), "{}", dup.stderr);
    let pids = sandbox_pids(&sb, &id);
    ok(&sb, &["delete", "--force", &id]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_gone(&sb, &id, &pids);
}

#[test]
fn concurrent_calls_on_one_id_do_not_corrupt_it() {
    let sb = lifecycle_sandbox("lc-race");
    let _cleanup = DeleteAll(sb.state_root.clone());
    sb.bundle.write_config(&Process::sh(LOOP));
    let id = unique_id("lc-race");
    let bundle = sb.bundle.dir.to_str().expect("path").to_string();
    // Four creates of one id: exactly one wins.
    let codes: Vec<i32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| cordon(&sb, &["create", "--bundle", &bundle, &id]).code)).collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "creates: {codes:?}");
    let pids = sandbox_pids(&sb, &id);
    ok(&sb, &["start", &id]);
    // State readers racing two force-deletes: every state read is whole
    // JSON or "does not exist", and the container ends up gone.
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..5 {
                        let out = cordon(&sb, &["state", &id]);
                        if out.code == 0 {
                            serde_json::from_str::<serde_json::Value>(&out.stdout).expect("whole state JSON");
                        } else {
                            assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
                        }
                    }
                })
            })
            .collect();
        let deleters: Vec<_> = (0..2).map(|_| s.spawn(|| cordon(&sb, &["delete", "--force", &id]).code)).collect();
        for r in readers {
            r.join().expect("reader");
        }
        for d in deleters {
            assert_eq!(d.join().expect("deleter"), 0);
        }
    });
    assert_gone(&sb, &id, &pids);
    let _ = reap(pids[0]);
}

#[test]
fn a_crashed_sandbox_is_stopped_and_delete_cleans_it_up() {
    let sb = lifecycle_sandbox("lc-crash");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let (id, pid) = create(&sb, &Process::sh(LOOP));
    ok(&sb, &["start", &id]);
    let pids = sandbox_pids(&sb, &id);
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = reap(pid);
    assert_eq!(status_of(&sb, &id), "stopped");
    ok(&sb, &["delete", "--force", &id]);
    assert_gone(&sb, &id, &pids);
}

#[test]
fn run_detached_and_foreground() {
    let sb = lifecycle_sandbox("lc-run");
    let _cleanup = DeleteAll(sb.state_root.clone());
    sb.bundle.write_config(&Process::sh(LOOP));
    let id = unique_id("lc-rund");
    let pid_file = sb.tmp().join("run.pid");
    let mut cmd = cordon_command(&sb.state_root, None);
    cmd.args(["run", "--detach", "--pid-file"]).arg(&pid_file).arg("--bundle").arg(&sb.bundle.dir).arg(&id);
    let out_file = sb.tmp().join("run.out");
    let out = fs::File::create(&out_file).expect("out file");
    let st = cmd.stdin(Stdio::null()).stdout(out).stderr(Stdio::null()).status().expect("run -d");
    assert!(st.success());
    assert_eq!(status_of(&sb, &id), "running");
    // TERM only once init's trap is set (pid 1 ignores it before).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(&out_file).unwrap_or_default().contains("started") {
        assert!(Instant::now() < deadline, "init did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid: i32 = fs::read_to_string(&pid_file).expect("pid").trim().parse().expect("pid");
    let pids = sandbox_pids(&sb, &id);
    ok(&sb, &["kill", &id, "TERM"]);
    let status = reap(pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3, "status {status:#x}");
    ok(&sb, &["delete", &id]);
    assert_gone(&sb, &id, &pids);
    // In the foreground, `run` is create + start + wait + delete.
    sb.bundle.write_config(&Process::sh("echo hello; exit 4"));
    let id = unique_id("lc-runf");
    let out = Command::new(cordon_tests::cordon_bin())
        .arg("--root")
        .arg(&sb.state_root)
        .args(["run", "--bundle"])
        .arg(&sb.bundle.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_nothing_left(&sb.state_root, &id);
}

/// Writes a bundle at `dir` on `rootfs` for `process`, annotated as CRI
/// annotates a pod's containers.
fn pod_bundle(dir: &Path, rootfs: &Path, process: &Process, kind: &str, pod: &str) -> PathBuf {
    let bundle = cordon_tests::Bundle::shared(dir, rootfs);
    let mut config = cordon_tests::oci_config(process, &rootfs.to_string_lossy());
    config["annotations"] = serde_json::json!({
        "io.kubernetes.cri.container-type": kind,
        "io.kubernetes.cri.sandbox-id": pod,
    });
    bundle.write_config_value(&config);
    bundle.dir
}

/// `cordon create` of `bundle` as `id`, its output to `<tmp>/<id>.out`;
/// returns the pid file's pid.
fn create_bundle(sb: &Sandbox, bundle: &Path, id: &str) -> i32 {
    let pid_file = sb.tmp().join(format!("{id}.pid"));
    let out_file = sb.tmp().join(format!("{id}.out"));
    let mut cmd = cordon_command(&sb.state_root, sb.log_dir.as_deref());
    cmd.arg("create").arg("--bundle").arg(bundle).arg("--pid-file").arg(&pid_file).arg(id);
    let out = fs::File::create(&out_file).expect("out file");
    cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("dup")).stderr(out);
    let status = cmd.status().expect("spawn cordon create");
    assert!(status.success(), "cordon create failed: {}", fs::read_to_string(&out_file).unwrap_or_default());
    fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid")
}

/// The cordon subcommand a host process runs (`boot`, `exec-wait`, ...).
fn cordon_role(pid: i32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    args.iter().skip(1).find(|a| !a.starts_with('-') && a.parse::<i32>().is_err()).cloned().unwrap_or_default()
}

#[test]
fn a_pods_containers_share_its_sandbox() {
    let sb = lifecycle_sandbox("lc-pod");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let pod = unique_id("lc-pod");
    // The pod's sandbox container (CRI's pause) on the shared rootfs; its
    // containers on a root of their own, which the sandbox's lacks.
    let pause = pod_bundle(&sb.tmp().join("pause"), sb.rootfs(), &Process::sh("exec sleep 100000"), "sandbox", &pod);
    let app_root = sb.tmp().join("app-rootfs");
    cordon_tests::install_busybox(&app_root);
    cordon_tests::write_file(&app_root, "/which", b"app\n", 0o644);
    let app = pod_bundle(
        &sb.tmp().join("app"),
        &app_root,
        &Process::sh("echo started; cat /which; exec sleep 100000"),
        "container",
        &pod,
    );
    let pod_pid = create_bundle(&sb, &pause, &pod);
    ok(&sb, &["start", &pod]);
    assert_eq!(cordon_role(pod_pid), "boot", "the pod's sandbox container is a sentry");

    let id = unique_id("lc-app");
    let pid = create_bundle(&sb, &app, &id);
    // Its pid file's process stands for its init in the pod's sentry: no
    // second sentry.
    let role = cordon_role(pid);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let exit = fs::read_to_string(sb.state_root.join(&id).join("exit")).unwrap_or_default();
    assert_eq!(role, "exec-wait", "the container got a sandbox of its own (stat {stat:?}, exit {exit:?})");
    assert_eq!(status_of(&sb, &id), "created");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(container_output(&sb, &id), "", "init ran before start");
    ok(&sb, &["start", &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while container_output(&sb, &id) != "started\napp\n" {
        assert!(Instant::now() < deadline, "output: {:?}", container_output(&sb, &id));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status_of(&sb, &id), "running");
    // Each container has its own root, processes and execs.
    assert_eq!(ok(&sb, &["exec", &id, "cat", "/which"]), "app\n");
    fails(&sb, &["exec", &pod, "cat", "/which"], "No such file");
    let ps = |c: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&ok(&sb, &["ps", "--format", "json", c])).expect("ps json");
        v.as_array().expect("pids").iter().map(|p| p.to_string()).collect()
    };
    assert_eq!(ps(&id).len(), 1, "the container's processes: {:?}", ps(&id));
    assert_eq!(ps(&pod).len(), 1, "the pod's own processes: {:?}", ps(&pod));
    assert_ne!(ps(&id), ps(&pod));
    // The container stops alone; the pod's sandbox goes on.
    let gofers = sandbox_pids(&sb, &id);
    ok(&sb, &["kill", &id, "KILL"]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    assert_eq!(status_of(&sb, &id), "stopped");
    assert_eq!(status_of(&sb, &pod), "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while gofers[1..].iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "the stopped container's gofer is still there");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = cordon(&sb, &["wait", &id]);
    assert_eq!(out.code, 128 + 9, "wait: {}", out.stderr);
    delete_and_check(&sb, &id);
    assert_eq!(ok(&sb, &["exec", &pod, "echo", "pod-alive"]), "pod-alive\n");

    // Killed before it starts, it never runs.
    let id = unique_id("lc-app");
    let pid = create_bundle(&sb, &app, &id);
    ok(&sb, &["kill", &id, "KILL"]);
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(container_output(&sb, &id), "");
    delete_and_check(&sb, &id);

    // `delete --force` of a running container, whose exec'd process goes
    // with it, then the same id again at once.
    let id = unique_id("lc-app");
    let pid = create_bundle(&sb, &app, &id);
    ok(&sb, &["start", &id]);
    ok(&sb, &["exec", "--detach", &id, "sleep", "100000"]);
    // Init's sleep and the exec'd one (once init's `cat` is gone).
    let deadline = Instant::now() + Duration::from_secs(10);
    while ps(&id).len() != 2 {
        assert!(Instant::now() < deadline, "the container's processes: {:?}", ps(&id));
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(&sb, &["delete", "--force", &id]);
    let _ = reap(pid);
    assert_eq!(ps(&pod).len(), 1, "the deleted container's processes are left");
    let pid = create_bundle(&sb, &app, &id);
    ok(&sb, &["kill", &id, "KILL"]);
    let _ = reap(pid);
    delete_and_check(&sb, &id);

    // A container the pod's sandbox takes with it.
    let id = unique_id("lc-app");
    let pid = create_bundle(&sb, &app, &id);
    ok(&sb, &["start", &id]);
    ok(&sb, &["kill", &pod, "KILL"]);
    let status = reap(pod_pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    let status = reap(pid);
    assert!(libc::WIFSIGNALED(status), "the container outlived its pod: {status:#x}");
    assert_eq!(status_of(&sb, &id), "stopped");
    // No container joins a stopped pod.
    let late = unique_id("lc-app");
    let mut cmd = cordon_command(&sb.state_root, sb.log_dir.as_deref());
    let out = cmd.arg("create").arg("--bundle").arg(&app).arg(&late).output().expect("cordon create");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_left(&sb.state_root, &late);
    delete_and_check(&sb, &id);
    delete_and_check(&sb, &pod);
}

/// A pod's container bundle whose spec's pid namespace is its own (no
/// path: CRI's default) or the pod's (a path, as CRI's shareProcessNamespace).
fn pod_bundle_pid_ns(dir: &Path, rootfs: &Path, process: &Process, pod: &str, pod_pid: Option<i32>) -> PathBuf {
    let bundle = pod_bundle(dir, rootfs, process, "container", pod);
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("config")).expect("json");
    let ns = match pod_pid {
        Some(p) => serde_json::json!({ "type": "pid", "path": format!("/proc/{p}/ns/pid") }),
        None => serde_json::json!({ "type": "pid" }),
    };
    let list = config["linux"]["namespaces"].as_array_mut().expect("namespaces");
    list.retain(|n| n["type"] != "pid");
    list.push(ns);
    config["mounts"] = serde_json::json!([{ "destination": "/proc", "type": "proc", "source": "proc" }]);
    fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write config");
    bundle
}

#[test]
fn a_pods_containers_have_pid_namespaces_of_their_own() {
    let sb = lifecycle_sandbox("lc-pidns");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let pod = unique_id("lc-pidns");
    let pause = pod_bundle(&sb.tmp().join("pause"), sb.rootfs(), &Process::sh("exec sleep 100000"), "sandbox", &pod);
    let pod_pid = create_bundle(&sb, &pause, &pod);
    ok(&sb, &["start", &pod]);
    let init = Process::sh("echo init $$ $PPID; exec sleep 100000");
    let own = pod_bundle_pid_ns(&sb.tmp().join("own"), sb.rootfs(), &init, &pod, None);
    let shared = pod_bundle_pid_ns(&sb.tmp().join("shared"), sb.rootfs(), &init, &pod, Some(pod_pid));
    let (c1, c2, c3) = (unique_id("lc-c1"), unique_id("lc-c2"), unique_id("lc-c3"));
    let pids: Vec<i32> =
        [(&own, &c1), (&own, &c2), (&shared, &c3)].iter().map(|(b, id)| create_bundle(&sb, b, id)).collect();
    for id in [&c1, &c2, &c3] {
        ok(&sb, &["start", id]);
    }
    let output = |id: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !container_output(&sb, id).ends_with('\n') {
            assert!(Instant::now() < deadline, "no output from {id}");
            std::thread::sleep(Duration::from_millis(10));
        }
        container_output(&sb, id)
    };
    // In a namespace of its own, init is pid 1 with no parent; in the
    // pod's, it is one more of the pod's processes.
    assert_eq!(output(&c1), "init 1 0\n");
    assert_eq!(output(&c2), "init 1 0\n");
    let c3_init = output(&c3);
    assert_ne!(c3_init, "init 1 0\n");
    assert!(c3_init.ends_with(" 0\n"), "c3's init: {c3_init:?}");

    // Each sees only its own processes: /proc lists them, by their ids
    // there (the exec'd shell is pid 2, after init).
    let procs = "for d in /proc/[0-9]*; do echo ${d#/proc/} $(cat $d/comm); done";
    assert_eq!(ok(&sb, &["exec", &c1, "sh", "-c", procs]), "1 sleep\n2 sh\n");
    assert_eq!(ok(&sb, &["exec", &c2, "sh", "-c", &format!("echo $$ $PPID; {procs}")]), "2 0\n1 sleep\n2 sh\n");
    // The pod's namespace sees every process of the pod: four sleeps.
    let all = ok(&sb, &["exec", &c3, "sh", "-c", procs]);
    assert_eq!(all.lines().filter(|l| l.ends_with(" sleep")).count(), 4, "from the pod's namespace: {all}");
    assert!(all.starts_with("1 sleep\n"), "the pod's init is pid 1 there: {all}");
    // /proc/self/ns/pid tells the namespaces apart.
    let ns_of = |id: &str| ok(&sb, &["exec", id, "readlink", "/proc/self/ns/pid"]);
    let (n1, n2, n3) = (ns_of(&c1), ns_of(&c2), ns_of(&c3));
    assert!(n1 != n2 && n1 != n3 && n2 != n3, "{n1} {n2} {n3}");
    // /proc/self is the reader's id there.
    let me = ok(&sb, &["exec", &c2, "sh", "-c", "echo $$; exec readlink /proc/self"]);
    let ids: Vec<&str> = me.lines().collect();
    assert!(ids.len() == 2 && ids[0] == ids[1] && ids[0].parse::<i32>().is_ok_and(|p| p < 20), "{me}");

    // An orphan goes to its namespace's init.
    let bg = ok(&sb, &["exec", &c1, "sh", "-c", "sleep 100000 & echo $!"]);
    let bg = bg.trim();
    let stat = ok(&sb, &["exec", &c1, "cat", &format!("/proc/{bg}/stat")]);
    assert_eq!(stat.split(' ').nth(3), Some("1"), "the orphan's stat: {stat}");
    // A namespace's init ignores signals from inside it that it has no
    // handler for, SIGKILL too; other namespaces cannot reach it.
    ok(&sb, &["exec", &c2, "kill", "-9", "1"]);
    // (c1's orphan's id means nothing, or another process, in c2.)
    let _ = cordon(&sb, &["exec", &c2, "kill", "-9", bg]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status_of(&sb, &c2), "running");
    assert_eq!(ok(&sb, &["exec", &c1, "cat", &format!("/proc/{bg}/comm")]), "sleep\n");
    // From outside, SIGTERM is ignored likewise (init has no handler), and
    // SIGKILL from the pod's namespace (an ancestor of c1's: it sees c1's
    // init by its sandbox id, the lowest of c1's) ends the container: its
    // namespace goes with it.
    ok(&sb, &["kill", &c1, "TERM"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status_of(&sb, &c1), "running");
    let ps: serde_json::Value = serde_json::from_str(&ok(&sb, &["ps", "--format", "json", &c1])).expect("ps json");
    let c1_init = ps.as_array().expect("pids").iter().filter_map(|p| p.as_i64()).min().expect("c1's init");
    ok(&sb, &["exec", &c3, "kill", "-9", &c1_init.to_string()]);
    let status = reap(pids[0]);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let all = ok(&sb, &["exec", &c3, "sh", "-c", procs]);
        if all.lines().filter(|l| l.ends_with(" sleep")).count() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "c1's processes outlived it: {all}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // (The others' stand-ins name the state root: they go first.)
    for (id, pid) in [(&c2, pids[1]), (&c3, pids[2])] {
        ok(&sb, &["kill", id, "KILL"]);
        let _ = reap(pid);
    }
    for id in [&c1, &c2, &c3] {
        delete_and_check(&sb, id);
    }
    ok(&sb, &["kill", &pod, "KILL"]);
    let _ = reap(pod_pid);
    delete_and_check(&sb, &pod);
}

/// The init of a pod's container with a PID namespace of its own sees what
/// the init of a fresh PID namespace sees on Linux (tests/programs/
/// pidns_init.c, run natively under `unshare --pid --fork --mount-proc`).
#[test]
fn a_containers_own_pid_namespace_is_like_linuxs() {
    let bin = cordon_tests::compile_program("pidns_init");
    let native = Command::new("unshare").args(["--pid", "--fork", "--mount-proc"]).arg(&bin).output().expect("unshare");
    assert!(native.status.success(), "native run: {}", String::from_utf8_lossy(&native.stderr));
    let expected = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(expected.starts_with("pid 1 ppid 0"), "natively not its namespace's init: {expected}");

    let sb = lifecycle_sandbox("lc-pidinit");
    let _cleanup = DeleteAll(sb.state_root.clone());
    let pod = unique_id("lc-pidinit");
    let pause = pod_bundle(&sb.tmp().join("pause"), sb.rootfs(), &Process::sh("exec sleep 100000"), "sandbox", &pod);
    let pod_pid = create_bundle(&sb, &pause, &pod);
    ok(&sb, &["start", &pod]);
    let root = sb.tmp().join("init-rootfs");
    cordon_tests::install_busybox(&root);
    cordon_tests::write_file(&root, "/pidns_init", &fs::read(&bin).expect("binary"), 0o755);
    let bundle = pod_bundle_pid_ns(&sb.tmp().join("init"), &root, &Process::new(&["/pidns_init"]), &pod, None);
    let id = unique_id("lc-pidinit");
    let pid = create_bundle(&sb, &bundle, &id);
    ok(&sb, &["start", &id]);
    let status = reap(pid);
    assert_eq!(container_output(&sb, &id), expected);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status:#x}");
    delete_and_check(&sb, &id);
    ok(&sb, &["kill", &pod, "KILL"]);
    let _ = reap(pod_pid);
    delete_and_check(&sb, &pod);
}
