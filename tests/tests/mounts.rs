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
