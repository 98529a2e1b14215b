//! The root overlay: with `root.readonly: false` the container's writes go
//! to a tmpfs layered over the rootfs in the sentry (copy-up, whiteouts,
//! new files and directories, renames, metadata), and the host's rootfs is
//! never changed.
use std::fs;

use cordon_tests::{assert_status, busybox_rootfs, oci_config, run_cordon, unique_id, Process, Sandbox};

#[test]
fn writes_land_in_memory_and_never_on_the_host() {
    let rootfs = busybox_rootfs();
    let before = fs::read(rootfs.join("data/words.txt")).expect("fixture");
    let sb = Sandbox::with_shared_rootfs("overlay", &rootfs);
    let script = "echo new > /etc/newfile && cat /etc/newfile && \\
        echo changed >> /data/words.txt && tail -1 /data/words.txt && \\
        mkdir -p /opt/x/y && echo deep > /opt/x/y/z && cat /opt/x/y/z && \\
        rm /data/words.txt && ls /data/words.txt 2>&1; \\
        echo again > /data/words.txt && cat /data/words.txt && \\
        rm /data/words.txt && ls /data/words.txt 2>&1; \\
        touch /data/scratch && rm /data/scratch && ls /data/scratch 2>&1; \\
        mv /etc/newfile /etc/renamed && ls /etc/newfile /etc/renamed 2>&1; \\
        chmod 600 /etc/renamed && stat -c %a /etc/renamed && \\
        ln -s /etc/renamed /etc/link && cat /etc/link && \\
        rm -r /opt/x && ls /opt";
    let mut config = oci_config(&Process::sh(script), &rootfs.to_string_lossy());
    config["root"]["readonly"] = serde_json::json!(false);
    sb.bundle.write_config_value(&config);
    let id = unique_id("overlay");
    let out = run_cordon(&sb.state_root, &sb.bundle.dir, &id, None);
    assert_status(&out, 0);
    let expected = "new\nchanged\ndeep\nls: /data/words.txt: No such file or directory\nagain\nls: /data/words.txt: No such file or directory\nls: /data/scratch: No such file or directory\nls: /etc/newfile: No such file or directory\n/etc/renamed\n600\nnew\n";
    assert_eq!(out.stdout_str(), expected, "stderr:\n{}", out.stderr_str());
    // Nothing reached the host.
    assert_eq!(fs::read(rootfs.join("data/words.txt")).expect("fixture"), before);
    for p in ["etc/newfile", "etc/renamed", "etc/link", "opt/x"] {
        assert!(!rootfs.join(p).exists(), "{p} was written to the host rootfs");
    }
}

/// O_TMPFILE in a lower directory of the overlay and in a directory made
/// in the upper layer: the unnamed file lives in the upper layer, where a
/// linkat through /proc/self/fd names it, as the same program shows on
/// the host (the output never names the directory).
#[test]
fn tmpfile_in_the_overlay_like_the_host() {
    let bin = cordon_tests::compile_program("tmpfile");
    let mut sb = Sandbox::new("overlay-tmpfile");
    for d in ["/proc", "/data"] {
        cordon_tests::make_dir(sb.rootfs(), d, 0o755);
    }
    cordon_tests::install_file(sb.rootfs(), "/prog", &bin, 0o755);
    let mut config = oci_config(&Process::new(&["/prog", "/data"]), "rootfs");
    config["root"]["readonly"] = serde_json::json!(false);
    config["mounts"] = serde_json::json!([{ "destination": "/proc", "type": "proc", "source": "proc" }]);
    let out = sb.run_cordon_config(&config, &[]);
    assert_status(&out, 0);
    let host_dir = sb.bundle.dir.join("host-dir");
    fs::create_dir(&host_dir).expect("host dir");
    let native = std::process::Command::new(&bin).arg(&host_dir).output().expect("run natively");
    assert!(native.status.success(), "native run: {}", String::from_utf8_lossy(&native.stdout));
    assert_eq!(out.stdout_str(), String::from_utf8_lossy(&native.stdout), "stderr:\n{}", out.stderr_str());
    // The lower directory on the host is untouched.
    assert_eq!(fs::read_dir(sb.rootfs().join("data")).expect("data").count(), 0);
}
