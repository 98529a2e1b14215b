//! Cordon under containerd, by both routes: containerd's stock runc shim
//! (`io.containerd.runc.v2` with `--runc-binary` pointing at cordon), and
//! Cordon's own shim (`io.containerd.cordon.v1`, options from a TOML file
//! given as `--runtime-config-path`). The `ctr` operations a user of runc
//! relies on behave as they do with runc.
//! A private containerd comes from tests/containerd/containerd-harness.sh
//! (a copy of ../shared/scripts/containerd-harness.sh), with a locally
//! built busybox image; nothing is pulled.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cordon_tests::{cordon_bin, require_root, shim_bin, tests_dir, unique_id, TempDir, Tmux};

const IMAGE: &str = "docker.io/cordon/busybox:latest";

/// How containerd reaches cordon.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Route {
    /// `io.containerd.runc.v2` with `--runc-binary cordon`.
    RuncShim,
    /// `io.containerd.cordon.v1`: containerd-shim-cordon-v1.
    CordonShim,
}

/// A private containerd, stopped when dropped.
struct Containerd {
    dir: PathBuf,
    route: Route,
    _tmp: TempDir,
}

fn harness() -> PathBuf {
    tests_dir().join("containerd/containerd-harness.sh")
}

impl Containerd {
    fn start(route: Route) -> Containerd {
        Self::start_with(route, false)
    }

    /// With `cri`, the CRI plugin too, with a runtime handler `cordon`
    /// (our shim, options from the same TOML file).
    fn start_with(route: Route, cri: bool) -> Containerd {
        require_root();
        // The harness wants a short directory (containerd's socket path).
        let tmp = TempDir::new("ctrd");
        let dir = tmp.path().join("c");
        // containerd finds containerd-shim-cordon-v1 on its PATH.
        let shims = tmp.path().join("shims");
        std::fs::create_dir_all(&shims).unwrap();
        if route == Route::CordonShim {
            std::os::unix::fs::symlink(shim_bin(), shims.join("containerd-shim-cordon-v1")).unwrap();
        }
        let mut cmd = Command::new("bash");
        cmd.arg(harness()).arg("start").env("CTRD_DIR", &dir).env("CTRD_EXTRA_PATH", &shims);
        if cri {
            let runtime = r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cordon]"#;
            let toml = format!(
                "    {runtime}\n      runtime_type = \"io.containerd.cordon.v1\"\n    {}\n        ConfigPath = \"{}\"\n",
                runtime.replace("cordon]", "cordon.options]"),
                dir.join("cordon.toml").display()
            );
            cmd.env("CTRD_CRI", "1").env("CTRD_CRI_EXTRA_TOML", toml);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run the containerd harness");
        assert!(out.status.success(), "containerd harness start failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let c = Containerd { dir, route, _tmp: tmp };
        // Our shim's options: its state root (where the tests look for
        // what is left) and a global flag of cordon's.
        let toml = format!("root = \"{}\"\n[cordon]\nplatform = \"systrap\"\n", c.runc_root().join("test").display());
        std::fs::write(c.options_file(), toml).unwrap();
        c
    }

    fn options_file(&self) -> PathBuf {
        self.dir.join("cordon.toml")
    }

    /// `ctr ARGS` against the private daemon.
    fn ctr(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(harness()).arg("ctr").args(args).env("CTRD_DIR", &self.dir).stdin(Stdio::null());
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ctr");
        let deadline = Instant::now() + Duration::from_secs(120);
        let pid = child.id();
        let waiter = std::thread::spawn(move || child.wait_with_output());
        while !waiter.is_finished() {
            if Instant::now() > deadline {
                // SAFETY: kill takes plain integers.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                panic!("ctr {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        waiter.join().expect("ctr thread").expect("ctr output")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The runtime flags of `ctr run` for the route.
    fn runtime_args(&self) -> Vec<String> {
        match self.route {
            Route::RuncShim => vec![
                "--runtime".into(),
                "io.containerd.runc.v2".into(),
                "--runc-root".into(),
                self.runc_root().display().to_string(),
                "--runc-binary".into(),
                cordon_bin().display().to_string(),
            ],
            Route::CordonShim => vec![
                "--runtime".into(),
                "io.containerd.cordon.v1".into(),
                "--runtime-config-path".into(),
                self.options_file().display().to_string(),
            ],
        }
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.join("cordon-root")
    }

    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let rt = self.runtime_args();
        let mut args: Vec<&str> = vec!["run"];
        args.extend(extra);
        args.extend(rt.iter().map(String::as_str));
        args.push(IMAGE);
        args.push(id);
        args.extend(cmd);
        self.ctr(&args)
    }

    /// `ctr ARGS` (one shell string) with a terminal: under script(1).
    fn in_terminal(&self, args: &str) -> Output {
        let ctr = format!("ctr --address {} -n test {args}", self.dir.join("containerd.sock").display());
        let out = Command::new("timeout")
            .args(["120", "script", "-qec", &ctr, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        assert_ne!(out.status.code(), Some(124), "ctr {args} hung");
        out
    }

    fn task_status(&self, id: &str) -> String {
        let ls = self.ok(&["task", "ls"]);
        ls.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_string()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.task_status(id) != want {
            assert!(Instant::now() < deadline, "task {id} never became {want} (is {})", self.task_status(id));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed test left: the harness removes the tasks, and
        // cordon anything the shim did not delete.
        cordon_tests::delete_all_containers(&self.runc_root().join("test"));
        let _ = Command::new("bash")
            .arg(harness())
            .arg("stop")
            .env("CTRD_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn no_containers_left(root: &Path) {
    let left: Vec<String> = std::fs::read_dir(root)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "cordon state left under {}: {left:?}", root.display());
}

#[test]
fn ctr_through_the_runc_shim() {
    ctr_operations(Route::RuncShim);
}

#[test]
fn ctr_through_the_cordon_shim() {
    ctr_operations(Route::CordonShim);
}

/// Kubernetes' path: a pod through the CRI with `cordon` as its runtime
/// handler (RuntimeClass), its containers in our shim (one shim for the
/// pod: the shim groups by the sandbox id).
#[test]
fn cri_pod_through_the_cordon_shim() {
    let c = Containerd::start_with(Route::CordonShim, true);
    let mut cmd = Command::new("bash");
    cmd.arg(harness()).args(["cri-smoke", "--handler", "cordon"]).env("CTRD_DIR", &c.dir).stdin(Stdio::null());
    let out = cmd.output().expect("run cri-smoke");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("CRI smoke: OK"), "cri-smoke failed:\n{text}");
    // The pod ran in cordon: our shim logged to containerd.
    let log = std::fs::read_to_string(c.dir.join("containerd.log")).unwrap_or_default();
    assert!(log.contains("containerd_shim_cordon_v1"), "our shim never ran:\n{log}");
    nothing_left(&c);
}

#[test]
fn cri_pod_of_two_containers_in_one_sentry() {
    let c = Containerd::start_with(Route::CordonShim, true);
    // cri-smoke first: it also sets up the harness's Python (gRPC) venv.
    let mut cmd = Command::new("bash");
    cmd.arg(harness()).args(["cri-smoke", "--handler", "cordon"]).env("CTRD_DIR", &c.dir).stdin(Stdio::null());
    let out = cmd.output().expect("run cri-smoke");
    assert!(out.status.success(), "cri-smoke failed:\n{}", String::from_utf8_lossy(&out.stdout));
    let venv = std::env::var("CTRD_VENV").unwrap_or_else(|_| "/tmp/containerd-harness-venv".into());
    let script = harness().with_file_name("cri-pod.py");
    let out = Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .arg(c.dir.join("containerd.sock"))
        .args(["--handler", "cordon", "--cordon-root"])
        .arg(c.runc_root().join("test"))
        .arg("--logdir")
        .arg(c.dir.join("pods").join("pod2"))
        .stdin(Stdio::null())
        .output()
        .expect("run cri-pod.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("CRI pod: OK"), "cri-pod failed:\n{text}");
    nothing_left(&c);
}

/// No cordon state, rootfs mount or shim process is left of the tasks.
fn nothing_left(c: &Containerd) {
    no_containers_left(&c.runc_root().join("test"));
    assert_eq!(rootfs_mounts(c), Vec::<String>::new(), "rootfs mounts left");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shims(c).is_empty() {
        assert!(Instant::now() < deadline, "shims left: {:?}", shims(c));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mount points under containerd's state directory (the tasks' rootfs).
fn rootfs_mounts(c: &Containerd) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let state = c.dir.join("state").display().to_string();
    mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&state)).map(String::from).collect()
}

/// The shim processes of our containerd.
fn shims(c: &Containerd) -> Vec<u32> {
    let sock = c.dir.join("containerd.sock").display().to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().is_some_and(|a| a.contains("containerd-shim")) && args.contains(&sock) {
            pids.push(pid);
        }
    }
    pids
}

fn ctr_operations(route: Route) {
    let c = Containerd::start(route);
    // ctr run --rm: output and exit status.
    let out = c.run(&["--rm"], &unique_id("rm"), &["echo", "hello"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let out = c.run(&["--rm"], &unique_id("rm"), &["sh", "-c", "echo to-stderr >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "to-stderr");

    // ctr run -d, then exec, ps, pause/resume, kill, rm.
    let id = unique_id("d");
    let out = c.run(&["-d"], &id, &["sleep", "600"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c.wait_status(&id, "RUNNING");
    assert_eq!(c.ok(&["task", "exec", "--exec-id", "e1", &id, "echo", "exec-ok"]), "exec-ok\n");
    let out = c.ctr(&["task", "exec", "--exec-id", "e2", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "exec's exit status");
    // An exec that cannot start fails at once, naming the program, and the
    // task lives on.
    let out = c.ctr(&["task", "exec", "--exec-id", "bad", &id, "/nope"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && err.contains("/nope"), "exec of a missing program: {err}");
    let ps = c.ok(&["task", "ps", &id]);
    assert!(ps.lines().any(|l| l.split_whitespace().next() == Some("1")), "ctr task ps lists init:\n{ps}");
    if route == Route::CordonShim {
        // Stats: the sandbox's own accounting, as cgroup v1 metrics.
        let m = c.ok(&["task", "metrics", &id]);
        let value = |name: &str| -> u64 {
            m.lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in ctr task metrics:\n{m}"))
        };
        assert_eq!(value("pids.current"), 1, "{m}");
        assert!(value("memory.usage_in_bytes") > 0, "{m}");
    }
    c.ok(&["task", "pause", &id]);
    c.wait_status(&id, "PAUSED");
    c.ok(&["task", "resume", &id]);
    c.wait_status(&id, "RUNNING");
    // TERM reaches init, which (pid 1, no handler) ignores it, as with runc.
    c.ok(&["task", "kill", &id]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.task_status(&id), "RUNNING");
    c.ok(&["task", "kill", "-s", "KILL", &id]);
    c.wait_status(&id, "STOPPED");
    // A kill of an ended task: containerd's NotFound, as with runc.
    let out = c.ctr(&["task", "kill", &id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && err.contains("process already finished: not found"), "{err}");
    c.ok(&["task", "rm", &id]);
    c.ok(&["container", "rm", &id]);

    // A shell that handles TERM exits on it.
    let id = unique_id("t");
    let out = c.run(&["-d"], &id, &["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]);
    assert!(out.status.success());
    c.wait_status(&id, "RUNNING");
    c.ok(&["task", "kill", "-s", "TERM", &id]);
    c.wait_status(&id, "STOPPED");
    c.ok(&["task", "rm", &id]);
    c.ok(&["container", "rm", &id]);

    // Terminals: ctr run -t and task exec -t, with ctr's own terminal
    // from script(1) (as the harness's oci-trace runs them).
    let out = c.in_terminal(&format!(
        "run --rm -t {} {IMAGE} {} sh -c 'tty; exit 3'",
        c.runtime_args().join(" "),
        unique_id("t")
    ));
    assert_eq!(out.status.code(), Some(3), "ctr run -t's status:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"), "{}", String::from_utf8_lossy(&out.stdout));
    let id = unique_id("x");
    assert!(c.run(&["-d"], &id, &["sleep", "600"]).status.success());
    c.wait_status(&id, "RUNNING");
    let out = c.in_terminal(&format!("task exec -t --exec-id e3 {id} sh -c 'tty; [ -t 0 ] && echo exec-tty; exit 6'"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(6), "ctr task exec -t's status:\n{text}");
    assert!(text.contains("/dev/pts/0") && text.contains("exec-tty"), "{text}");
    c.ok(&["task", "rm", "-f", &id]);
    c.ok(&["container", "rm", &id]);

    // A person typing into `ctr run --rm -t` (tmux): a command, Ctrl-C of
    // a foreground job, a resize (the shim's ResizePty), the exit status.
    let status = c.dir.join("tty-status");
    let line = format!(
        "ctr --address {} -n test run --rm -t {} {IMAGE} {} sh; echo $? > {}",
        c.dir.join("containerd.sock").display(),
        c.runtime_args().join(" "),
        unique_id("p"),
        status.display()
    );
    let t = Tmux::start(&line);
    t.wait_for("/ #", 1);
    t.keys(&["echo typed-$((6*7))", "Enter"]);
    t.wait_for("typed-42", 1);
    t.type_then_key("sleep 100", "C-c");
    t.wait_for("/ #", 3);
    t.resize(70, 20);
    t.keys(&["stty size", "Enter"]);
    t.wait_for("20 70", 1);
    t.keys(&["exit 9", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&status).unwrap_or_default().trim() != "9" {
        assert!(Instant::now() < deadline, "ctr run -t did not exit 9:\n{}", t.pane());
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(t);

    // Force removal of a running task.
    let id = unique_id("f");
    assert!(c.run(&["-d"], &id, &["sleep", "600"]).status.success());
    c.wait_status(&id, "RUNNING");
    c.ok(&["task", "rm", "-f", &id]);
    c.ok(&["container", "rm", &id]);
    nothing_left(&c);
}
