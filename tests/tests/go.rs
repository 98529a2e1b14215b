//! A Go program: the Go runtime's threads (clone without CLONE_SETTLS),
//! signal stacks, futexes and /proc reads, in gVisor's static `runsc`
//! binary, run under cordon and under runc on the same bundle.
use std::path::Path;

use cordon_tests::{install_file, make_dir, Compare, Process, Sandbox};

#[test]
fn go_binary_runs_like_under_runc() {
    let runsc = ["/usr/bin/runsc", "/usr/sbin/runsc"].into_iter().map(Path::new).find(|p| p.exists());
    let runsc =
        runsc.expect("runsc (gVisor, a static Go binary) must be installed: tests/scripts/setup-deps.sh installs it");
    let mut sb = Sandbox::new("go-runsc");
    install_file(sb.rootfs(), "/runsc", runsc, 0o755);
    for d in ["/proc", "/dev", "/dev/shm", "/tmp"] {
        make_dir(sb.rootfs(), d, 0o755);
    }
    let mut p = Process::new(&["/runsc", "--version"]);
    p.env = vec!["PATH=/".into()];
    sb.assert_same_as_runc(&p, &Compare::status(0));
}
