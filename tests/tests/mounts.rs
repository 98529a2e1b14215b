//! The spec's mounts: bind mounts of host directories (each served by a
//! gofer of its own; ro and noexec honoured) next to tmpfs mounts, compared
//! with runc on the same bundle; the host directory is never changed.
use std::fs;

use cordon_tests::{install_busybox, make_dir, write_file, Compare, Process, Sandbox, TempDir};

#[test]
fn bind_mounts_like_runc() {
    let host = TempDir::new("bind-src");
    write_file(host.path(), "/hello", b"from the host\n", 0o644);
    write_file(host.path(), "/run.sh", b"#!/bin/sh\necho ran from the bind mount\n", 0o755);
    make_dir(host.path(), "/sub", 0o755);
    write_file(host.path(), "/sub/deep", b"deep\n", 0o600);
    let mut sb = Sandbox::new("mounts-bind");
    install_busybox(sb.rootfs());
    for d in ["/proc", "/sys", "/dev", "/dev/shm", "/tmp", "/mnt/ro", "/mnt/exec"] {
        make_dir(sb.rootfs(), d, 0o755);
    }
    let src = host.path().to_string_lossy().into_owned();
    let extra = [
        serde_json::json!({ "destination": "/mnt/ro", "type": "bind", "source": src, "options": ["rbind", "ro", "noexec"] }),
        serde_json::json!({ "destination": "/mnt/exec", "type": "bind", "source": src, "options": ["bind", "ro"] }),
    ];
    let script =
        "cat /mnt/ro/hello /mnt/ro/sub/deep; ls -R /mnt/ro | sort; echo x > /mnt/ro/new || echo write refused; \
        /mnt/ro/run.sh || echo exec refused; /mnt/exec/run.sh; grep -c ' /mnt/' /proc/mounts";
    sb.assert_same_as_runc_with(&Process::sh(script), &extra, &Compare::status(0));
    assert!(!host.path().join("new").exists(), "a write reached the host directory");
    assert_eq!(fs::read(host.path().join("hello")).expect("hello"), b"from the host\n");
}

#[test]
fn masked_and_readonly_paths_like_runc() {
    let mut outs = Vec::new();
    for runtime in ["runc", "cordon"] {
        let host = TempDir::new("masked-src");
        make_dir(host.path(), "/ro", 0o755);
        write_file(host.path(), "/ro/kept", b"kept\n", 0o644);
        make_dir(host.path(), "/open", 0o755);
        make_dir(host.path(), "/hidden", 0o755);
        write_file(host.path(), "/hidden/secret", b"secret\n", 0o644);
        let mut sb = Sandbox::new(&format!("masked-{runtime}"));
        install_busybox(sb.rootfs());
        for d in ["/proc", "/dev", "/tmp", "/mnt"] {
            make_dir(sb.rootfs(), d, 0o755);
        }
        write_file(sb.rootfs(), "/etc/secret", b"do not read\n", 0o644);
        let script = "cat /etc/secret | wc -c; stat -c %F /etc/secret; ls -A /mnt/hidden | wc -l; \
            touch /mnt/hidden/x 2>/dev/null || echo hidden refused; \
            echo x > /mnt/ro/f 2>/dev/null || echo ro refused; cat /mnt/ro/kept; \
            echo y > /mnt/open/f && cat /mnt/open/f; \
            echo h > /proc/sys/kernel/hostname 2>/dev/null || echo proc sys refused; cat /proc/sys/kernel/ostype";
        let mut config = sb.config(&Process::sh(script));
        config["mounts"] = serde_json::json!([
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/mnt", "type": "bind", "source": host.path(), "options": ["rbind", "rw"] },
        ]);
        config["linux"]["maskedPaths"] = serde_json::json!(["/etc/secret", "/mnt/hidden", "/proc/kcore", "/no/such"]);
        config["linux"]["readonlyPaths"] = serde_json::json!(["/mnt/ro", "/proc/sys"]);
        let out = if runtime == "runc" { sb.run_runc_config(&config) } else { sb.run_cordon_config(&config, &[]) };
        assert!(!host.path().join("ro/f").exists(), "{runtime} wrote a read-only path");
        assert!(!host.path().join("hidden/x").exists(), "{runtime} wrote a masked path");
        assert_eq!(fs::read(host.path().join("open/f")).ok().as_deref(), Some(&b"y\n"[..]), "{runtime}");
        let logs = sb.debug_logs();
        outs.push((out, logs, host, sb));
    }
    cordon_tests::assert_same_output("masked", "runc", &outs[0].0, &outs[1].0, &Compare::status(0), &outs[1].1);
}

#[test]
fn single_file_bind_mounts_like_runc() {
    let mut outs = Vec::new();
    for runtime in ["runc", "cordon"] {
        let host = TempDir::new("file-bind-src");
        write_file(host.path(), "/hosts", b"127.0.0.1 localhost\n10.0.0.1 db\n", 0o644);
        write_file(host.path(), "/log", b"start\n", 0o644);
        write_file(host.path(), "/sibling", b"must stay hidden\n", 0o644);
        let mut sb = Sandbox::new(&format!("file-bind-{runtime}"));
        install_busybox(sb.rootfs());
        for d in ["/proc", "/dev", "/tmp"] {
            make_dir(sb.rootfs(), d, 0o755);
        }
        write_file(sb.rootfs(), "/etc/hosts", b"original\n", 0o644);
        write_file(sb.rootfs(), "/var/log.txt", b"", 0o644);
        let script = "cat /etc/hosts; echo more >> /var/log.txt; cat /var/log.txt; \
            echo x >> /etc/hosts 2>/dev/null || echo hosts refused; ls /etc | grep -c hosts; ls -l /etc/hosts | cut -c1-10; \
            ls /etc/sibling 2>/dev/null || echo no sibling";
        let mut config = sb.config(&Process::sh(script));
        config["mounts"] = serde_json::json!([
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/etc/hosts", "type": "bind", "source": host.path().join("hosts"), "options": ["rbind", "ro"] },
            { "destination": "/var/log.txt", "type": "bind", "source": host.path().join("log"), "options": ["rbind", "rw"] },
        ]);
        let out = if runtime == "runc" { sb.run_runc_config(&config) } else { sb.run_cordon_config(&config, &[]) };
        assert_eq!(fs::read(host.path().join("log")).unwrap_or_default(), b"start\nmore\n", "{runtime}");
        assert_eq!(fs::read(host.path().join("hosts")).unwrap_or_default(), b"127.0.0.1 localhost\n10.0.0.1 db\n");
        assert_eq!(fs::read(sb.rootfs().join("etc/hosts")).unwrap_or_default(), b"original\n");
        let logs = sb.debug_logs();
        outs.push((out, logs, host, sb));
    }
    cordon_tests::assert_same_output("file-bind", "runc", &outs[0].0, &outs[1].0, &Compare::status(0), &outs[1].1);
}

/// openat2's RESOLVE_* restrictions and the /proc magic links (a pipe, an
/// unlinked file and a directory reached through /proc/self/fd and cwd)
/// behave as under runc, whose /proc and mounts the program needs.
#[test]
fn openat2_and_magic_links_like_runc() {
    let mut sb = program_sandbox("openat2", "openat2");
    sb.assert_same_as_runc(&Process::new(&["/prog"]), &Compare::status(0));
}

/// A sandbox whose rootfs holds test program `program` as /prog and the
/// mount points of runc's mounts.
fn program_sandbox(name: &str, program: &str) -> Sandbox {
    let bin = cordon_tests::compile_program(program);
    let sb = Sandbox::new(name);
    for d in ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp"] {
        make_dir(sb.rootfs(), d, 0o755);
    }
    cordon_tests::install_file(sb.rootfs(), "/prog", &bin, 0o755);
    sb
}

/// statx masks (multigrain times, birth times), STATX_ATTR_MOUNT_ROOT and
/// mount ids that agree with /proc/self/mountinfo, as under runc.
#[test]
fn statx_and_mount_ids_like_runc() {
    let mut sb = program_sandbox("statx-mounts", "statx_mounts");
    sb.assert_same_as_runc(&Process::new(&["/prog"]), &Compare::status(0));
}

/// devpts: terminals made through /dev/ptmx behave as under runc's devpts
/// (line discipline, echo, raw mode, window size, controlling terminal,
/// ^C and SIGWINCH to the foreground group, hang-ups).
#[test]
fn pty_like_runc() {
    let mut sb = program_sandbox("pty", "pty");
    let devpts = serde_json::json!({
        "destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    });
    sb.assert_same_as_runc_with(&Process::new(&["/prog"]), &[devpts], &Compare::status(0));
}

/// O_TMPFILE on a tmpfs: unnamed files reached through /proc/self/fd
/// (reopened, named by linkat, "(deleted)" links), O_EXCL and unlinked
/// files that no link brings back, EROFS in the read-only root, as under
/// runc.
#[test]
fn tmpfile_like_runc() {
    let mut sb = program_sandbox("tmpfile", "tmpfile");
    sb.assert_same_as_runc(&Process::new(&["/prog"]), &Compare::status(0));
}

/// The spec's mqueue mount: the sandbox's message queues as files of
/// /dev/mqueue (listing, the QSIZE text, open(2) descriptors that are
/// queues, O_CREAT making a queue, unlink, chmod, truncate, the operations
/// mqueue refuses, statfs and mountinfo), as under runc.
#[test]
fn mqueue_mount_like_runc() {
    let mut sb = program_sandbox("mqueue-mount", "mqueue_mount");
    let mqueue = serde_json::json!({
        "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"]
    });
    sb.assert_same_as_runc_with(&Process::new(&["/prog"]), &[mqueue], &Compare::status(0));
}

/// The spec's cgroup mount: a read-only cgroup v2 view of the container's
/// own cgroup (the cgroupns root, "0::/" in /proc/self/cgroup), whatever
/// the host runs: runc shows the host's hierarchy (v1 on this CI machine),
/// so the expected output is written out here.
#[test]
fn cgroup_view() {
    let mut sb = Sandbox::new("mounts-cgroup");
    install_busybox(sb.rootfs());
    for d in ["/proc", "/sys", "/dev", "/dev/shm", "/tmp"] {
        make_dir(sb.rootfs(), d, 0o755);
    }
    let cgroup = serde_json::json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
    });
    let script = "cat /proc/self/cgroup /sys/fs/cgroup/cgroup.type; grep -cx 1 /sys/fs/cgroup/cgroup.procs; \
        for f in cgroup.procs cgroup.threads cpu.max memory.max memory.current pids.max pids.current; do \
        test -r /sys/fs/cgroup/$f && echo $f; done; echo 5 > /sys/fs/cgroup/pids.max; \
        awk '$8 == \"cgroup2\" {print $5, $6, $8, $9}' /proc/self/mountinfo; stat -f -c %t /sys/fs/cgroup";
    let mut config = cordon_tests::oci_config(&Process::sh(script), "rootfs");
    config["mounts"] = serde_json::json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs" },
        cgroup.clone()
    ]);
    let out = sb.run_cordon_config(&config, &[]);
    cordon_tests::assert_status(&out, 0);
    assert_eq!(
        out.stdout_str(),
        "0::/\ndomain\n1\ncgroup.procs\ncgroup.threads\ncpu.max\nmemory.max\nmemory.current\npids.max\npids.current\n\
         /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime cgroup2 cgroup\n63677270\n"
    );
    assert!(out.stderr_str().contains("Read-only file system"), "{}", out.stderr_str());

    // The task limit the sandbox enforces is the one shown.
    let mut config =
        cordon_tests::oci_config(&Process::sh("cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids.current"), "rootfs");
    config["mounts"] = serde_json::json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs" },
        cgroup
    ]);
    config["linux"]["resources"] = serde_json::json!({ "pids": { "limit": 77 } });
    let out = sb.run_cordon_config(&config, &[]);
    cordon_tests::assert_status(&out, 0);
    assert_eq!(out.stdout_str(), "77\n1\n", "pids.max and pids.current (sh execs cat: one task)");
}
