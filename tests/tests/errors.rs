//! The CLI's behaviour on bad input: every case must fail with a non-zero
//! status (not a crash, not a hang), print a clear message naming the problem
//! on stderr, and leave nothing behind: no `<root>/<id>` state directory and
//! no process whose command line names the container id or the state root.

use cordon_tests::{
    assert_nothing_left, busybox_rootfs, cordon_command, make_dir, oci_config, run_timeout, spawn_piped, unique_id,
    wait_with_timeout, write_file, Process, RunOutput, Sandbox, Status, HELLO_TEXT,
};
use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Runs `cordon --root <state> run --bundle <bundle> <id>` for the sandbox.
fn run_id(sb: &Sandbox, bundle: &std::path::Path, id: &str) -> RunOutput {
    cordon_tests::run_cordon(&sb.state_root, bundle, id, sb.log_dir.as_deref())
}

/// Asserts a clean failure: non-zero exit, `keyword` on stderr (case-insensitive),
/// no panic, optionally an exact status, and nothing left behind for `id`.
fn assert_clean_failure(sb: &Sandbox, out: &RunOutput, id: &str, keyword: &str, status: Option<i32>) {
    let stderr = out.stderr_str();
    let context =
        format!("{} -> {}\n--- stdout ---\n{}\n--- stderr ---\n{}", out.command, out.status, out.stdout_str(), stderr);
    match out.status {
        Status::Exited(0) => panic!("expected a failure, got exit 0\n{context}"),
        Status::Exited(code) => {
            if let Some(want) = status {
                assert_eq!(code, want, "wrong exit status\n{context}");
            }
        }
        Status::Signaled(_) | Status::TimedOut => {
            panic!("cordon must fail with a message, not crash or hang\n{context}")
        }
    }
    assert!(stderr.to_lowercase().contains(&keyword.to_lowercase()), "stderr must mention {keyword:?}\n{context}");
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"),
        "cordon panicked instead of reporting an error\n{context}"
    );
    assert!(!out.pipes_left_open, "a process kept cordon's stdout/stderr open\n{context}");
    assert_nothing_left(&sb.state_root, id);
}

/// A sandbox with a tiny rootfs (`/data/hello.txt`, `/data/notes.txt` mode 0755).
fn small_sandbox(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    make_dir(sb.rootfs(), "/data", 0o755);
    write_file(sb.rootfs(), "/data/hello.txt", HELLO_TEXT.as_bytes(), 0o644);
    write_file(sb.rootfs(), "/data/notes.txt", b"just some text, no #! line\n", 0o755);
    sb
}

#[test]
fn missing_bundle_directory() {
    let sb = Sandbox::new("err-no-bundle");
    let missing = sb.tmp().join("no-such-bundle-dir");
    let id = unique_id("err-no-bundle");
    let out = run_id(&sb, &missing, &id);
    assert_clean_failure(&sb, &out, &id, "no-such-bundle-dir", None);
}

#[test]
fn missing_config_json() {
    let sb = Sandbox::new("err-no-config");
    let id = unique_id("err-no-config");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    assert_clean_failure(&sb, &out, &id, "config.json", None);
}

#[test]
fn malformed_config_json() {
    let sb = Sandbox::new("err-bad-json");
    fs::write(
        sb.bundle.dir.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\n    \"args\": [\"/prog\",]\n  }\n",
    )
    .expect("write config.json");
    let id = unique_id("err-bad-json");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    // serde_json's errors say "... at line L column C".
    assert_clean_failure(&sb, &out, &id, "line", None);
}

#[test]
fn config_root_path_does_not_exist() {
    let sb = small_sandbox("err-no-rootfs");
    let config = oci_config(&Process::new(&["/data/hello.txt"]), "no-such-rootfs");
    sb.bundle.write_config_value(&config);
    let id = unique_id("err-no-rootfs");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    assert_clean_failure(&sb, &out, &id, "no-such-rootfs", None);
}

#[test]
fn empty_process_args() {
    let sb = small_sandbox("err-empty-args");
    let mut process = Process::new(&["/x"]);
    process.args.clear();
    sb.bundle.write_config(&process);
    let id = unique_id("err-empty-args");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    assert_clean_failure(&sb, &out, &id, "args", None);
}

/// An argument with a NUL byte cannot reach execve: refused, like runc's
/// EINVAL, instead of cut short.
#[test]
fn nul_in_process_args() {
    let sb = small_sandbox("err-nul-args");
    sb.bundle.write_config(&Process::new(&["/x", "a\0b"]));
    let id = unique_id("err-nul-args");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    assert_clean_failure(&sb, &out, &id, "NUL", None);
}

#[test]
fn entrypoint_does_not_exist() {
    let sb = small_sandbox("err-no-entry");
    sb.bundle.write_config(&Process::new(&["/no/such/prog"]));
    let id = unique_id("err-no-entry");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    assert_clean_failure(&sb, &out, &id, "/no/such/prog", Some(127));
}

#[test]
fn entrypoint_is_not_elf() {
    let sb = small_sandbox("err-not-elf");
    sb.bundle.write_config(&Process::new(&["/data/notes.txt"]));
    let id = unique_id("err-not-elf");
    let out = run_id(&sb, &sb.bundle.dir, &id);
    assert_clean_failure(&sb, &out, &id, "exec format error", Some(126));
}

#[test]
fn duplicate_container_id() {
    let rootfs = busybox_rootfs();
    let sb = Sandbox::with_shared_rootfs("err-dup-id", &rootfs);
    sb.bundle.write_config(&Process::new(&["/bin/sleep", "5"]));
    let id = unique_id("err-dup-id");

    let mut first_cmd: Command = cordon_command(&sb.state_root, sb.log_dir.as_deref());
    first_cmd.arg("run").arg("--bundle").arg(&sb.bundle.dir).arg(&id);
    let (child, command, start) = spawn_piped(&mut first_cmd).expect("spawn the first cordon run");
    // The first container is running once its state directory exists.
    let state = sb.state_root.join(&id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let appeared = state.exists();

    let mut child = child;
    let second = run_id(&sb, &sb.bundle.dir, &id);
    let first_running = matches!(child.try_wait(), Ok(None));
    let still_there = state.exists();
    let first = wait_with_timeout(child, command, start, run_timeout());

    assert!(
        appeared,
        "the first run never created its state directory {}; it ended with {}\n{}",
        state.display(),
        first.status,
        first.stderr_str()
    );
    assert!(
        matches!(second.status, Status::Exited(c) if c != 0),
        "the second run with the same id must fail, got {}\n{}",
        second.status,
        second.stderr_str()
    );
    assert!(
        second.stderr_str().contains("already exists"),
        "the second run must say the id already exists; stderr:\n{}",
        second.stderr_str()
    );
    assert!(
        still_there || !first_running,
        "the failed second run removed the state directory of the running first container"
    );
    assert_eq!(
        first.status,
        Status::Exited(0),
        "the first run must be unaffected by the second; stderr:\n{}",
        first.stderr_str()
    );
    assert!(!first.pipes_left_open, "the first run left a process behind");
    assert_nothing_left(&sb.state_root, &id);
}

#[test]
fn unknown_run_flag() {
    let sb = Sandbox::new("err-flag");
    let id = unique_id("err-flag");
    let mut cmd = cordon_command(&sb.state_root, None);
    cmd.args(["run", "--bogus", id.as_str()]);
    let out = cordon_tests::run_with_timeout(cmd, run_timeout()).expect("spawn cordon");
    assert_clean_failure(&sb, &out, &id, "--bogus", None);
}

#[test]
fn unknown_global_flag() {
    let sb = Sandbox::new("err-global-flag");
    let id = unique_id("err-global-flag");
    let mut cmd = Command::new(cordon_tests::cordon_bin());
    cmd.arg("--root").arg(&sb.state_root).args(["--no-such-global-flag", "run", id.as_str()]);
    let out = cordon_tests::run_with_timeout(cmd, run_timeout()).expect("spawn cordon");
    assert_clean_failure(&sb, &out, &id, "--no-such-global-flag", None);
}

/// The baseline for the cases above: a successful run leaves nothing behind
/// either, and its id can then be reused.
#[test]
fn successful_run_leaves_nothing_behind() {
    let rootfs = busybox_rootfs();
    let mut sb = Sandbox::with_shared_rootfs("ok-cleanup", &rootfs);
    let out = sb.run_cordon(&Process::new(&["/bin/true"]));
    cordon_tests::assert_status(&out, 0);
    assert!(!out.pipes_left_open, "a process kept cordon's stdout open");
    let id = sb.last_id.clone().expect("an id was used");
    assert_nothing_left(&sb.state_root, &id);
    // The same id can be used again once the first container is gone.
    let again = cordon_tests::run_cordon(&sb.state_root, &sb.bundle.dir, &id, None);
    cordon_tests::assert_status(&again, 0);
    assert_nothing_left(&sb.state_root, &id);
}
