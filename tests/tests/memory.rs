//! Guest memory costs the host what the guest uses.
use cordon_tests::{Process, Sandbox};

/// A private mapping of a big file reads in only the pages touched (it used
/// to be copied whole into the sandbox's memory at mmap time), and touching
/// every page does cost them all (so the measure is real).
#[test]
fn a_mapped_file_costs_only_the_pages_touched() {
    let mut sb = Sandbox::new("memory-lazy-mmap");
    let prog = cordon_tests::compile_program("lazy_mmap");
    cordon_tests::install_file(sb.rootfs(), "/prog", &prog, 0o755);
    for d in ["/proc", "/sys"] {
        cordon_tests::make_dir(sb.rootfs(), d, 0o755);
    }
    // 64 MiB, sparse on the host, with three marks.
    let big = sb.rootfs().join("big");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(64 << 20).unwrap();
    for (i, at) in [0u64, (32 << 20) - 1, (64 << 20) - 2].into_iter().enumerate() {
        std::os::unix::fs::FileExt::write_all_at(&f, &[i as u8 + 1], at).unwrap();
    }
    let mut config = cordon_tests::oci_config(&Process::new(&["/prog", "/big"]), "rootfs");
    config["mounts"] = serde_json::json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs" },
        { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"] }
    ]);
    let out = sb.run_cordon_config(&config, &[]);
    cordon_tests::assert_status(&out, 0);
    assert_eq!(
        out.stdout_str(),
        "bytes 1 2 3\nsum 1\nthree pages cost under 1 MiB: 1\nevery page costs over 60 MiB: 1\n",
        "{}",
        out.stderr_str()
    );
}
