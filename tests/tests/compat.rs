//! Syscall-compatibility suite: every `tests/compat/<name>.c` is compiled
//! statically, run natively in a chroot of its rootfs and inside `cordon run`,
//! and must print the same stdout and end with the same status.
//!
//! The rootfs of every test is the fixture tree of `compat_fixtures` plus the
//! program as `/prog`.

use cordon_tests::{assert_status, compat_fixtures, compile_compat, install_file, Compare, Process, Sandbox, HOSTNAME};

/// Builds the rootfs for compat program `name` and returns the sandbox.
fn sandbox_for(name: &str) -> Sandbox {
    let bin = compile_compat(name);
    let sb = Sandbox::new(name);
    compat_fixtures(sb.rootfs());
    install_file(sb.rootfs(), "/prog", &bin, 0o755);
    sb
}

/// Runs compat program `name` both ways; the native run must end with `status`.
fn compat(name: &str, status: i32) {
    let mut sb = sandbox_for(name);
    sb.assert_same(&Process::new(&["/prog"]), &Compare::status(status));
}

macro_rules! compat_tests {
    ($($name:ident $(=> $status:expr)?),+ $(,)?) => {
        /// Every program that has a test, to check none is forgotten.
        const PROGRAMS: &[&str] = &[$(stringify!($name)),+];
        $(
            #[test]
            fn $name() {
                compat(stringify!($name), compat_tests!(@status $($status)?));
            }
        )+
    };
    (@status) => { 0 };
    (@status $status:expr) => { $status };
}

compat_tests! {
    access,
    args_env,
    arch_prctl,
    bigread,
    bigwrite,
    brk,
    close,
    cwd,
    devices,
    dup,
    efault,
    einval,
    enosys,
    exit42 => 42,
    exit_thread => 7,
    threads,
    events,
    proc_misc,
    job_control,
    signal_avx,
    posix_timers,
    tmpfs,
    creds,
    mounts,
    mqueue,
    copy_range,
    cpu_timers,
    signal_restart,
    locks,
    lock_deadlock,
    inotify,
    fork_wait,
    fork_read_cow,
    getdents,
    ids,
    io_rw,
    ioctl,
    madvise,
    mmap_anon,
    mmap_file,
    open,
    pipe_exec,
    poll,
    poll_wait,
    prctl,
    pread_lseek,
    random,
    readlink,
    rlimit,
    sched,
    segv => 139,
    sigaction,
    sigaltstack,
    signal_default,
    signal_deliver,
    signal_fault,
    signal_term,
    sleep,
    stat,
    statx,
    sysinfo,
    tid,
    time,
    timers_select,
    umask,
    uname,
}

/// Every `compat/*.c` has a test above, and every test has a program.
#[test]
fn every_program_has_a_test() {
    let dir = cordon_tests::tests_dir().join("compat");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("list tests/compat")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".c").map(String::from)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = PROGRAMS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/compat/*.c and the compat_tests! list in tests/compat.rs must match");
}

/// The same program started in another working directory (process.cwd).
#[test]
fn cwd_from_config() {
    let mut sb = sandbox_for("cwd");
    sb.assert_same(&Process::new(&["/prog"]).cwd("/data/dir"), &Compare::status(0));
}

/// argv with spaces and empty strings reaches the guest unchanged.
#[test]
fn args_env_with_arguments() {
    let mut sb = sandbox_for("args_env");
    let process = Process::new(&["/prog", "one", "two words", "", "--flag=x"]);
    sb.assert_same(&process, &Compare::status(0));
}

/// uname(2) inside cordon reports the config's hostname.
#[test]
fn nodename_is_config_hostname() {
    // Cordon only: the hostname must be the config's, whatever the host's is.
    let mut sb = sandbox_for("uname");
    let out = sb.run_cordon(&Process::new(&["/prog", "nodename"]));
    assert_status(&out, 0);
    assert_eq!(
        out.stdout_str(),
        format!("{HOSTNAME}\n"),
        "uname(2) nodename inside cordon must be the config's hostname; stderr:\n{}",
        out.stderr_str()
    );
}
