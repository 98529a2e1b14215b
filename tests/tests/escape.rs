//! Escape attempts: a guest tries to read a host file outside its rootfs
//! through `..`, absolute and relative symlinks, `/proc/self/root` (proc is
//! not mounted in this milestone) and chdir/fchdir climbing. The secret must
//! never appear in the guest's output, and the sandbox must agree with a
//! native chroot of the same rootfs.
//!
//! Layout of each test's temporary directory:
//!
//! ```text
//! TMP/secret                 secret (2 levels above the rootfs)
//! TMP/bundle/secret          secret (just above the rootfs)
//! TMP/bundle/config.json
//! TMP/bundle/rootfs/         the container
//! ```

use cordon_tests::{
    assert_status, compile_program, install_busybox, install_file, make_dir, make_symlink, write_file, Compare,
    Process, Sandbox, HELLO_TEXT,
};
use std::fs;

/// A sandbox with secrets planted outside its rootfs and the escape symlinks
/// inside. Returns the sandbox, the secret text and the absolute host path of
/// `TMP/secret`.
fn setup(name: &str) -> (Sandbox, String, String) {
    let sb = Sandbox::new(name);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let secret = format!("TOP-SECRET-{}-{nanos}", std::process::id());
    let host_secret = sb.tmp().join("secret");
    fs::write(&host_secret, format!("{secret}\n")).expect("write secret");
    fs::write(sb.bundle.dir.join("secret"), format!("{secret}\n")).expect("write secret");
    let host_secret = host_secret.to_string_lossy().into_owned();
    let root = sb.rootfs();
    make_dir(root, "/data", 0o755);
    make_dir(root, "/proc", 0o555);
    write_file(root, "/data/hello.txt", HELLO_TEXT.as_bytes(), 0o644);
    make_symlink(root, "/up", "../../..");
    make_symlink(root, "/data/hostlink", &host_secret);
    make_symlink(root, "/data/relup", "../../secret");
    (sb, secret, host_secret)
}

fn assert_no_secret(out: &cordon_tests::RunOutput, secret: &str) {
    for (what, data) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(data);
        assert!(
            !text.contains(secret),
            "SANDBOX ESCAPE: the guest's {what} contains the host secret.\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout_str(),
            out.stderr_str()
        );
    }
    assert!(
        !out.stdout_str().contains("config.json"),
        "the guest can see the bundle directory (config.json) above its root.\n--- stdout ---\n{}",
        out.stdout_str()
    );
}

/// A C program tries every trick in `programs/escape.c`.
#[test]
fn c_program_cannot_read_host_files() {
    let (mut sb, secret, host_secret) = setup("escape-c");
    install_file(sb.rootfs(), "/prog", &compile_program("escape"), 0o755);
    let process = Process::new(&["/prog", host_secret.as_str()]);
    let out = sb.assert_same(&process, &Compare::status(0));
    assert_no_secret(&out, &secret);
    assert!(
        out.stdout_str().contains("list /..: . .. data proc prog up"),
        "the guest's /.. must list the guest's root:\n{}",
        out.stdout_str()
    );
}

/// busybox `cat` of the escape paths: each fails, the control file is read.
#[test]
fn busybox_cat_cannot_read_host_files() {
    let (mut sb, secret, host_secret) = setup("escape-cat");
    install_busybox(sb.rootfs());
    let paths = [
        "../secret".to_string(),
        "/../secret".to_string(),
        "/../../secret".to_string(),
        "/data/../../secret".to_string(),
        host_secret.clone(),
        "/data/hostlink".to_string(),
        "/data/relup".to_string(),
        "/up/secret".to_string(),
        format!("/up{host_secret}"),
        format!("/proc/self/root{host_secret}"),
        "/proc/self/root/../secret".to_string(),
    ];
    let mut args = vec!["/bin/cat".to_string(), "/data/hello.txt".to_string()];
    args.extend(paths.iter().cloned());
    args.push("/data/hello.txt".to_string());
    let out = sb.assert_same(&Process::new(&args), &Compare::status(1));
    assert_no_secret(&out, &secret);
    assert_eq!(out.stdout_str(), format!("{HELLO_TEXT}{HELLO_TEXT}"), "only the control file may be printed");
    // Each escape path is reported as an error.
    let stderr = out.stderr_str();
    for p in &paths {
        assert!(stderr.contains(p.as_str()), "cat must report an error for {p}; stderr:\n{stderr}");
    }
}

/// Listing above the root shows the guest's root, never the bundle directory.
#[test]
fn listing_above_root_shows_guest_root() {
    let (mut sb, secret, _) = setup("escape-ls");
    install_busybox(sb.rootfs());
    for dir in ["/..", "/up", "/../..", "/data/../.."] {
        let out = sb.assert_same(&Process::new(&["/bin/ls", "-a", dir]), &Compare::status(0));
        assert_no_secret(&out, &secret);
        let names: Vec<String> = out.stdout_str().lines().map(String::from).collect();
        assert!(
            names.iter().any(|n| n == "bin") && !names.iter().any(|n| n == "rootfs"),
            "ls -a {dir} must list the guest root; got {names:?}"
        );
    }
    let out = sb.run_cordon(&Process::new(&["/bin/cat", "/data/relup"]));
    assert_status(&out, 1);
    assert_no_secret(&out, &secret);
}

/// With /proc and a writable bind mount, as runc gives them: the bind
/// source's parents, its symlinks (relative ones climbing out, absolute
/// host paths), hard links out of the bind mount, /proc/<pid>/root and cwd
/// of every visible process, and a rename race swapping a directory for a
/// symlink to the root never reach the secret next to the bind source; the
/// output is runc's.
#[test]
fn bind_mount_proc_and_rename_race_like_runc() {
    let (mut sb, secret, host_secret) = setup("escape-bind");
    install_busybox(sb.rootfs());
    let root = sb.rootfs().to_path_buf();
    for d in ["/mnt", "/mnt/b", "/sys", "/dev", "/dev/shm", "/tmp"] {
        make_dir(&root, d, 0o755);
    }
    let src = sb.tmp().join("bindsrc");
    fs::create_dir(&src).expect("mkdir bindsrc");
    fs::write(src.join("file"), "inside the bind mount\n").expect("write");
    std::os::unix::fs::symlink("../secret", src.join("uplink")).expect("symlink");
    std::os::unix::fs::symlink(&host_secret, src.join("abslink")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../..", src.join("deeplink")).expect("symlink");
    let script = format!(
        r#"
cat /mnt/b/file
ls -a /mnt/b/..
cat /mnt/b/../secret /mnt/b/uplink /mnt/b/abslink /mnt/b/deeplink{host_secret} 2>&1
cd /mnt/b && cd ../../.. && ls -a . | tr '\n' ' '; echo
ln /mnt/b/file /linked 2>&1; ln /mnt/b/file /tmp/linked 2>&1; ln /mnt/b/file /mnt/b/linked && echo same-mount link ok
rm /mnt/b/linked; mkdir /tmp 2>&1; mkdir /bin/new 2>&1
for p in /proc/[0-9]*; do cat $p/root/../secret $p/root{host_secret} $p/cwd/../../secret 2>/dev/null; done
readlink /proc/self/root; ls /proc/self/root/ | tr '\n' ' '; echo
mkdir -p /tmp/race/d/sub
(while :; do mv /tmp/race/d /tmp/race/x; ln -s /../../.. /tmp/race/d; rm /tmp/race/d; mv /tmp/race/x /tmp/race/d; done) 2>/dev/null &
for i in $(seq 300); do cat /tmp/race/d/../../../secret /tmp/race/d{host_secret} 2>/dev/null; done
kill $!; echo raced
"#
    );
    let bind = serde_json::json!({
        "destination": "/mnt/b", "type": "bind", "source": src.to_string_lossy(), "options": ["rbind", "rw"]
    });
    let out = sb.assert_same_as_runc_with(&Process::new(&["/bin/sh", "-c", &script]), &[bind], &Compare::status(0));
    assert_no_secret(&out, &secret);
    assert!(
        out.stdout_str().contains("inside the bind mount") && out.stdout_str().contains("raced"),
        "{}",
        out.stdout_str()
    );
}

/// A hostile guest jumps to every `syscall` instruction of the stub page
/// that a platform's seccomp filter could let through, with calls the host
/// would answer differently from the sentry (and `kill(1, SIGKILL)`), then
/// forges an rt_sigreturn that blocks every host signal and spins: nothing
/// reaches the host, and the guest's own alarm still interrupts it. Under
/// both platforms.
#[test]
fn stub_page_system_calls_stay_in_the_sandbox() {
    for platform in ["--platform=systrap", "--platform=ptrace"] {
        let mut sb = Sandbox::new("escape-stub-sites");
        install_file(sb.rootfs(), "/prog", &compile_program("stub_sites"), 0o755);
        let config = cordon_tests::oci_config(&Process::new(&["/prog"]), "rootfs");
        let out = sb.run_cordon_config(&config, &[platform]);
        let text = out.stdout_str();
        assert_status(&out, 0);
        assert!(!text.contains("HOST ANSWERED"), "{platform}: {text}");
        assert!(text.contains("ok alarm interrupted a thread that blocked every host signal"), "{platform}: {text}");
        let sites = text.lines().filter(|l| l.starts_with("ok getpid at")).count();
        assert!(sites >= 5, "{platform}: expected the stub's call sites, found {sites}:\n{text}");
    }
}
