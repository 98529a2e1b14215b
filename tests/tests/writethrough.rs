//! Writes through the gofer to host files: a writable root with
//! `--overlay=none`, and writable bind mounts. The results on the host must
//! be what runc leaves (same output, same tree: names, types, modes,
//! owners, sizes, contents, link targets), and what a program observes must
//! match the same program run natively.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cordon_tests::{
    assert_same_output, compat_fixtures, compile_compat, install_busybox, install_file, make_dir, run_native,
    write_file, Compare, Process, Sandbox, TempDir,
};

/// One line per file below `root`: path, type and mode, owner, size (not
/// for directories, whose size depends on the host file system), and the
/// contents or link target.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else { continue };
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default())
            } else if m.is_file() {
                let data = fs::read(&p).unwrap_or_default();
                format!("{} bytes {:?}", m.len(), String::from_utf8_lossy(&data[..data.len().min(64)]))
            } else {
                String::new()
            };
            out.insert(
                rel,
                format!(
                    "{:o} {}:{} nlink={} {what}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    if m.is_dir() { 0 } else { m.nlink() }
                ),
            );
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same_tree(runc: &Path, cordon: &Path) {
    let (a, b) = (snapshot(runc), snapshot(cordon));
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k}: runc left {v:?}, cordon {:?}", b.get(k));
    }
    for k in b.keys() {
        assert!(a.contains_key(k), "{k}: only cordon left it");
    }
}

/// Docker's default capabilities (what containerd gives a container), so
/// that root in the container may chown and mknod as the script does.
fn with_default_caps(config: &mut serde_json::Value) {
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    config["process"]["capabilities"] = serde_json::json!({ "bounding": caps, "effective": caps, "permitted": caps });
}

/// A script that changes a tree in every way the gofer can. (Files about
/// to change are printed with `head`, not `cat`: busybox cat splices file
/// pages into the output pipe, and Linux's pipe then shows a later
/// truncation of those pages.)
const CHANGES: &str = "set -e; cd /w; \
    echo hello > f; echo more >> f; cat f; \
    mkdir -p d/e/f; chmod 2750 d; mkdir d/sg; ls -ld d/sg | cut -c1-10; \
    ln f hard; ln -s ../f d/sym; head -c 64 d/sym; \
    mv f d/e/moved; ls d/e; head -c 64 hard; \
    touch -d '2001-02-03 04:05:06' d/e/moved; stat -c '%Y %s %h' d/e/moved; \
    truncate -s 3 hard; cat d/e/moved; echo; \
    chown 1000:1000 hard; stat -c '%u:%g %a' hard; \
    mkfifo d/fifo; ls -l d/fifo | cut -c1-10; \
    rm -r d/e/f; rmdir d/e 2>&1 || echo rmdir refused; \
    mv -T d dd; ls dd | sort; \
    dd if=/dev/zero of=big bs=4096 count=300 2>/dev/null; wc -c < big; \
    rm big; ls | sort; echo done";

#[test]
fn overlay_none_writes_the_host_rootfs_like_runc() {
    let mut sbs: Vec<Sandbox> = ["wt-runc", "wt-cordon"]
        .iter()
        .map(|n| {
            let sb = Sandbox::new(n);
            install_busybox(sb.rootfs());
            for d in ["/proc", "/dev", "/tmp"] {
                make_dir(sb.rootfs(), d, 0o755);
            }
            make_dir(sb.rootfs(), "/w", 0o755);
            write_file(sb.rootfs(), "/w/keep", b"kept\n", 0o644);
            sb
        })
        .collect();
    let process = Process::sh(CHANGES);
    let mut config = sbs[0].config(&process);
    config["root"]["readonly"] = serde_json::json!(false);
    config["mounts"] = serde_json::json!([{ "destination": "/proc", "type": "proc", "source": "proc" }]);
    with_default_caps(&mut config);
    let runc = sbs[0].run_runc_config(&config);
    let mut config = sbs[1].config(&process);
    config["root"]["readonly"] = serde_json::json!(false);
    config["mounts"] = serde_json::json!([{ "destination": "/proc", "type": "proc", "source": "proc" }]);
    with_default_caps(&mut config);
    let cordon = sbs[1].run_cordon_config(&config, &["--overlay=none"]);
    let logs = sbs[1].debug_logs();
    assert_same_output("overlay-none", "runc", &runc, &cordon, &Compare::status(0), &logs);
    assert_same_tree(&sbs[0].rootfs().join("w"), &sbs[1].rootfs().join("w"));
    assert!(sbs[1].rootfs().join("w/dd/sym").is_symlink());
    drop(sbs.pop());
}

#[test]
fn writable_bind_mounts_write_the_host_like_runc() {
    let mut results = Vec::new();
    for (name, runtime) in [("bind-rw-runc", "runc"), ("bind-rw-cordon", "cordon")] {
        let host = TempDir::new(name);
        write_file(host.path(), "/keep", b"kept\n", 0o644);
        let mut sb = Sandbox::new(name);
        install_busybox(sb.rootfs());
        for d in ["/proc", "/dev", "/tmp", "/w"] {
            make_dir(sb.rootfs(), d, 0o755);
        }
        let mut config = sb.config(&Process::sh(CHANGES));
        config["mounts"] = serde_json::json!([
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/w", "type": "bind", "source": host.path(), "options": ["rbind", "rw"] },
        ]);
        with_default_caps(&mut config);
        let out = if runtime == "runc" { sb.run_runc_config(&config) } else { sb.run_cordon_config(&config, &[]) };
        let logs = sb.debug_logs();
        results.push((host, out, logs, sb));
    }
    assert_same_output("bind-rw", "runc", &results[0].1, &results[1].1, &Compare::status(0), &results[1].2);
    assert_same_tree(results[0].0.path(), results[1].0.path());
}

#[test]
fn tmpfs_program_on_a_host_directory_matches_native() {
    let bin = compile_compat("tmpfs");
    let mut sb = Sandbox::new("wt-compat");
    compat_fixtures(sb.rootfs());
    install_file(sb.rootfs(), "/prog", &bin, 0o755);
    make_dir(sb.rootfs(), "/w", 0o755);
    let process = Process::new(&["/prog", "/w"]);
    let native = run_native(sb.rootfs(), &process);
    assert_eq!(fs::read_dir(sb.rootfs().join("w")).map(|d| d.count()).unwrap_or(1), 0, "native run left files");
    let mut config = sb.config(&process);
    config["root"]["readonly"] = serde_json::json!(false);
    let cordon = sb.run_cordon_config(&config, &["--overlay=none"]);
    let logs = sb.debug_logs();
    assert_same_output("wt-compat", "native", &native, &cordon, &Compare::status(0), &logs);
}

#[test]
fn shared_mappings_reach_the_host_file() {
    let bin = cordon_tests::compile_program("mmap_writer");
    let host = TempDir::new("mmap-host");
    let mut sb = Sandbox::new("wt-mmap");
    install_file(sb.rootfs(), "/prog", &bin, 0o755);
    make_dir(sb.rootfs(), "/w", 0o755);
    for how in ["munmap", "msync", "exit"] {
        let process = Process::new(&["/prog", &format!("/w/{how}"), how]);
        let mut config = sb.config(&process);
        config["mounts"] = serde_json::json!([{ "destination": "/w", "type": "bind", "source": host.path(), "options": ["rbind", "rw"] }]);
        let out = sb.run_cordon_config(&config, &[]);
        cordon_tests::assert_status(&out, 0);
        let data = fs::read(host.path().join(how)).unwrap_or_default();
        assert_eq!(data.len(), 8192, "{how}");
        let page = |at: usize| String::from_utf8_lossy(&data[at..at + 64]).trim_end_matches('\0').to_string();
        assert_eq!(page(0), format!("first page via {how}"));
        assert_eq!(page(4096), format!("second page via {how}"));
    }
}

/// A private mapping made after a shared one wrote (without msync) sees
/// the written data, as read(2) and other shared mappings do: the sentry's
/// page cache of the host file, not the host file, is the file's data.
#[test]
fn private_mappings_see_what_shared_mappings_wrote() {
    let bin = cordon_tests::compile_program("mmap_coherent");
    let mut sb = Sandbox::new("wt-coherent");
    install_file(sb.rootfs(), "/prog", &bin, 0o755);
    make_dir(sb.rootfs(), "/w", 0o755);
    let process = Process::new(&["/prog", "/w"]);
    let native = run_native(sb.rootfs(), &process);
    assert_eq!(native.stdout_str(), "private new-data page-two\nshared new-data page-two\nread new-data\n");
    let mut config = sb.config(&process);
    config["root"]["readonly"] = serde_json::json!(false);
    let cordon = sb.run_cordon_config(&config, &["--overlay=none"]);
    let logs = sb.debug_logs();
    assert_same_output("wt-coherent", "native", &native, &cordon, &Compare::status(0), &logs);
}

#[test]
fn removed_files_give_their_gofer_handles_back() {
    // Each gofer handle is an open fd in the gofer: files created and
    // removed must not pile them up (run with a low fd limit).
    let host = TempDir::new("handles-host");
    let sb = Sandbox::new("wt-handles");
    install_busybox(sb.rootfs());
    make_dir(sb.rootfs(), "/w", 0o755);
    let script = "i=0; while [ $i -lt 600 ]; do echo x > /w/f$i; cat /w/f$i > /dev/null; rm /w/f$i; i=$((i+1)); done; ls /w | wc -l";
    let mut config = sb.config(&Process::sh(script));
    config["mounts"] =
        serde_json::json!([{ "destination": "/w", "type": "bind", "source": host.path(), "options": ["rbind", "rw"] }]);
    sb.bundle.write_config_value(&config);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg("ulimit -n 400 && exec \"$@\"").arg("sh").arg(cordon_tests::cordon_bin());
    cmd.arg("--root")
        .arg(&sb.state_root)
        .arg("run")
        .arg("--bundle")
        .arg(&sb.bundle.dir)
        .arg(cordon_tests::unique_id("handles"));
    let out = cordon_tests::run_with_timeout(cmd, cordon_tests::run_timeout()).expect("spawn");
    cordon_tests::assert_status(&out, 0);
    assert_eq!(out.stdout_str().trim(), "0", "{}", out.stderr_str());
}
