//! Shared helpers for Cordon's end-to-end tests (DESIGN.md §7).
//!
//! Every test builds an OCI bundle in its own temporary directory, runs the
//! same process natively in a `chroot` of the bundle's rootfs and inside
//! `cordon run`, and compares stdout and the exit status. Each test uses its
//! own state root (`cordon --root`) and a unique container id, so tests run
//! in parallel. Every child process runs under a deadline, so a hang fails the
//! test instead of hanging CI.
//!
//! Environment variables:
//! - `CORDON_BIN`: the binary under test (default `<workspace>/target/x86_64-unknown-linux-gnu/release/cordon`).
//! - `CORDON_TEST_TIMEOUT`: seconds before a run is killed (default 60).
//! - `CORDON_TEST_FLAGS`: extra global flags for every cordon invocation.
//! - `CORDON_TEST_DEBUG=1`: add `--debug-log DIR --strace` and show the logs on failure.
//! - `CORDON_TEST_KEEP=1`: keep temporary directories (they are always kept on failure).
//! - `CORDON_TEST_CACHE`: where compiled programs and shared rootfs trees are cached
//!   (default `<workspace>/target/cordon-tests`).
//! - `CORDON_BUSYBOX`: the busybox binary (default `/bin/busybox`, Debian's busybox-static).

use std::collections::hash_map::DefaultHasher;
use std::ffi::CString;
use std::fmt::Write as _;
use std::fs;
use std::hash::Hasher;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The hostname every test bundle asks for.
pub const HOSTNAME: &str = "cordon-test";

/// The environment of every guest process (natively and in the sandbox).
pub const GUEST_ENV: &[&str] = &["PATH=/bin:/usr/bin", "HOME=/root"];

/// Text of `/data/hello.txt` in the fixture trees.
pub const HELLO_TEXT: &str = "hello, world\n";

/// Size of `/data/big.bin` in the compat fixture tree.
pub const BIG_LEN: usize = 1 << 20;

/// Size of `/data/10m.bin` in the busybox rootfs.
pub const TEN_MIB: usize = 10 << 20;

/// Bumped whenever the shared busybox rootfs layout changes, so a stale cache is not reused.
const BUSYBOX_ROOTFS_VERSION: u32 = 3;

/// gcc flags for the compat programs.
const GCC_FLAGS: &[&str] = &["-O2", "-static", "-Wall"];

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_count() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Locations and preconditions
// ---------------------------------------------------------------------------

/// The `tests/` crate directory.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (parent of the `tests/` crate).
pub fn workspace_dir() -> PathBuf {
    tests_dir().parent().expect("tests crate has a parent directory").to_path_buf()
}

/// Where compiled programs and shared rootfs trees are cached.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("CORDON_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_dir().join("target").join("cordon-tests"),
    }
}

/// The cordon binary under test; panics with instructions if it is missing.
pub fn cordon_bin() -> PathBuf {
    let path = match std::env::var_os("CORDON_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_dir().join("target/x86_64-unknown-linux-gnu/release/cordon"),
    };
    if !path.is_file() {
        panic!(
            "cordon binary not found at {}: build it first with `cargo build --release` \
             (binary `cordon`), or point CORDON_BIN at it",
            path.display()
        );
    }
    path
}

/// Cordon's containerd shim, built beside the cordon binary under test
/// (the shim runs the `cordon` next to it).
pub fn shim_bin() -> PathBuf {
    let path = cordon_bin().with_file_name("containerd-shim-cordon-v1");
    if !path.is_file() {
        panic!("containerd-shim-cordon-v1 not found at {}: build it with `cargo build --release`", path.display());
    }
    path
}

/// Panics with a clear message unless the tests run as root (chroot and
/// `cordon run` need it; CI runs as root).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!(
            "the cordon end-to-end tests must run as root (euid is {euid}): they chroot into \
             test rootfs trees and start sandboxes; run e.g. `sudo -E cargo test -p cordon-tests --release`"
        );
    }
}

/// How long one run may take before it is killed.
pub fn run_timeout() -> Duration {
    let secs = std::env::var("CORDON_TEST_TIMEOUT").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

// ---------------------------------------------------------------------------
// Temporary directories and ids
// ---------------------------------------------------------------------------

fn sanitize(tag: &str) -> String {
    let s: String = tag.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.chars().take(40).collect()
}

/// A container id unique to this process and call: `<tag>-<pid>-<counter>`.
/// The counter has a fixed width so one id is never a prefix of another.
pub fn unique_id(tag: &str) -> String {
    format!("{}-{}-{:05}", sanitize(tag), std::process::id(), next_count())
}

/// A temporary directory, removed on drop unless the test failed or
/// `CORDON_TEST_KEEP` is set.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/cordon-test-<tag>-<pid>-<counter>` (mode 0755).
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("cordon-test-{}", unique_id(tag)));
        if path.exists() {
            // A stale directory of an earlier process that had the same pid.
            let _ = fs::remove_dir_all(&path);
        }
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        set_mode(&path, 0o755);
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() || env_flag("CORDON_TEST_KEEP") {
            eprintln!("keeping test directory {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Building file trees
// ---------------------------------------------------------------------------

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// `root` joined with a guest path such as `/data/x` (the leading `/` is dropped).
pub fn host_path(root: &Path, guest: &str) -> PathBuf {
    root.join(guest.trim_start_matches('/'))
}

fn ensure_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", parent.display()));
        }
    }
}

/// Creates directory `guest` (and missing parents) under `root` with `mode`.
pub fn make_dir(root: &Path, guest: &str, mode: u32) {
    let path = host_path(root, guest);
    fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", path.display()));
    set_mode(&path, mode);
}

/// Writes file `guest` under `root` with `contents` and `mode`.
pub fn write_file(root: &Path, guest: &str, contents: &[u8], mode: u32) {
    let path = host_path(root, guest);
    ensure_parent(&path);
    fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(&path, mode);
}

/// Copies host file `src` to `guest` under `root` with `mode`.
pub fn install_file(root: &Path, guest: &str, src: &Path, mode: u32) {
    let path = host_path(root, guest);
    ensure_parent(&path);
    fs::copy(src, &path).unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), path.display()));
    set_mode(&path, mode);
}

/// Creates symlink `guest` under `root` pointing at `target` (taken verbatim).
pub fn make_symlink(root: &Path, guest: &str, target: &str) {
    let path = host_path(root, guest);
    ensure_parent(&path);
    symlink(target, &path).unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", path.display()));
}

/// Byte `i` of `/data/big.bin`; keep in sync with `BIG_BYTE` in `compat/check.h`.
pub fn big_byte(i: usize) -> u8 {
    ((i.wrapping_mul(131) + (i >> 12)) & 0xff) as u8
}

/// The fixture tree the compat programs expect (see `compat/check.h`):
///
/// ```text
/// /data/hello.txt   "hello, world\n" 0644      /data/link     -> hello.txt
/// /data/big.bin     1 MiB, big_byte(i) 0644    /data/abslink  -> /data/hello.txt
/// /data/empty       0 bytes 0644               /data/dirlink  -> dir
/// /data/exec.sh     "#!/bin/sh..." 0755        /data/loop1    -> loop2, loop2 -> loop1
/// /data/script      "#!/prog  interp-arg" 0755 /data/noexec 0644, /data/garbage 0755 (text)
/// /data/dir/{a,b,c} "a\n" "bb\n" "ccc\n"       /data/dangling -> nowhere
/// /data/types/{reg 0640, sub/ 0700, sym -> reg}
/// ```
/// Device nodes the sandbox provides in /dev, made for the native chroot
/// (under cordon the sentry's devfs is mounted over them).
pub fn make_dev_nodes(root: &Path) {
    make_dir(root, "/dev", 0o755);
    make_dir(root, "/dev/shm", 0o1777);
    for (name, minor) in [("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)] {
        let path = host_path(root, &format!("/dev/{name}"));
        let _ = fs::remove_file(&path);
        let st = Command::new("mknod").args(["-m", "666"]).arg(&path).args(["c", "1", &minor.to_string()]).status();
        assert!(st.is_ok_and(|s| s.success()), "mknod {}", path.display());
    }
}

pub fn compat_fixtures(root: &Path) {
    set_mode(root, 0o755);
    make_dev_nodes(root);
    make_dir(root, "/data", 0o755);
    write_file(root, "/data/hello.txt", HELLO_TEXT.as_bytes(), 0o644);
    let big: Vec<u8> = (0..BIG_LEN).map(big_byte).collect();
    write_file(root, "/data/big.bin", &big, 0o644);
    write_file(root, "/data/empty", b"", 0o644);
    write_file(root, "/data/exec.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write_file(root, "/data/script", b"#!/prog  interp-arg  \nignored\n", 0o755);
    write_file(root, "/data/noexec", b"#!/prog\n", 0o644);
    write_file(root, "/data/garbage", b"not a program\n", 0o755);
    make_dir(root, "/data/dir", 0o755);
    write_file(root, "/data/dir/a", b"a\n", 0o644);
    write_file(root, "/data/dir/b", b"bb\n", 0o644);
    write_file(root, "/data/dir/c", b"ccc\n", 0o644);
    make_dir(root, "/data/types", 0o755);
    write_file(root, "/data/types/reg", b"reg\n", 0o640);
    make_dir(root, "/data/types/sub", 0o700);
    make_symlink(root, "/data/types/sym", "reg");
    make_symlink(root, "/data/link", "hello.txt");
    make_symlink(root, "/data/abslink", "/data/hello.txt");
    make_symlink(root, "/data/dirlink", "dir");
    make_symlink(root, "/data/loop1", "loop2");
    make_symlink(root, "/data/loop2", "loop1");
    make_symlink(root, "/data/dangling", "nowhere");
}

// ---------------------------------------------------------------------------
// Compiling C programs
// ---------------------------------------------------------------------------

fn hash_bytes(h: &mut DefaultHasher, bytes: &[u8]) {
    h.write_usize(bytes.len());
    h.write(bytes);
}

/// Compiles `src` with `gcc -O2 -static -Wall` and returns the binary.
///
/// Binaries are cached under `cache_dir()/cbin`, keyed by the source, the
/// headers next to it and the flags, so concurrent tests compile each program
/// once. Panics with a clear message if gcc is missing or the build fails.
pub fn compile_c(src: &Path) -> PathBuf {
    let source = fs::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let mut h = DefaultHasher::new();
    for flag in GCC_FLAGS {
        hash_bytes(&mut h, flag.as_bytes());
    }
    hash_bytes(&mut h, &source);
    // Headers beside the source and the shared ones in compat/ (check.h).
    let dir = src.parent().expect("source file has a parent directory");
    let mut headers: Vec<PathBuf> = [dir.to_path_buf(), tests_dir().join("compat")]
        .iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "h"))
        .collect();
    headers.sort();
    headers.dedup();
    for header in &headers {
        hash_bytes(&mut h, header.as_os_str().as_bytes());
        hash_bytes(&mut h, &fs::read(header).unwrap_or_default());
    }
    let stem = src.file_stem().expect("source file has a name").to_string_lossy().into_owned();
    let out_dir = cache_dir().join("cbin");
    let out = out_dir.join(format!("{stem}-{:016x}", h.finish()));
    if out.is_file() {
        return out;
    }
    fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", out_dir.display()));
    let tmp = out_dir.join(format!(".{stem}.{}.{}.tmp", std::process::id(), next_count()));
    let result = Command::new("gcc").args(GCC_FLAGS).arg("-o").arg(&tmp).arg(src).stdin(Stdio::null()).output();
    let output = match result {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
            "gcc not found: the compat suite compiles its C programs at test time; \
             install it with `apt-get install gcc libc6-dev`"
        ),
        Err(e) => panic!("run gcc: {e}"),
    };
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!("gcc {} failed ({}):\n{}", src.display(), output.status, String::from_utf8_lossy(&output.stderr));
    }
    fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), out.display()));
    out
}

/// Compiles `tests/compat/<name>.c`.
pub fn compile_compat(name: &str) -> PathBuf {
    compile_c(&tests_dir().join("compat").join(format!("{name}.c")))
}

/// Compiles `tests/programs/<name>.c` (programs that are not compat tests).
pub fn compile_program(name: &str) -> PathBuf {
    compile_c(&tests_dir().join("programs").join(format!("{name}.c")))
}

// ---------------------------------------------------------------------------
// Busybox
// ---------------------------------------------------------------------------

/// Whether the ELF file at `path` has a `PT_INTERP` program header (is dynamically linked).
pub fn elf_has_interp(path: &Path) -> io::Result<bool> {
    let data = fs::read(path)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a 64-bit ELF file");
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let mut phoff_bytes = [0u8; 8];
    phoff_bytes.copy_from_slice(&data[0x20..0x28]);
    let phoff = usize::try_from(u64::from_le_bytes(phoff_bytes)).map_err(|_| bad())?;
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > data.len() {
            return Err(bad());
        }
        let p_type = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
        if p_type == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The static busybox binary on the host; panics with install instructions if
/// it is missing or dynamically linked.
pub fn busybox_binary() -> PathBuf {
    let path = std::env::var_os("CORDON_BUSYBOX").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/bin/busybox"));
    match elf_has_interp(&path) {
        Ok(false) => path,
        Ok(true) => panic!(
            "{} is dynamically linked; install Debian's static build with \
             `apt-get install busybox-static` (or set CORDON_BUSYBOX)",
            path.display()
        ),
        Err(e) => panic!(
            "busybox not usable at {} ({e}); install it with `apt-get install busybox-static` \
             (or set CORDON_BUSYBOX)",
            path.display()
        ),
    }
}

/// The applet names of `busybox --list`, without `busybox` itself.
pub fn busybox_applets(busybox: &Path) -> Vec<String> {
    let out = Command::new(busybox)
        .arg("--list")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{} --list: {e}", busybox.display()));
    assert!(out.status.success(), "{} --list failed", busybox.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "busybox" && !l.contains('/'))
        .map(String::from)
        .collect()
}

/// Installs busybox as `/bin/busybox` in `root` with one `/bin/<applet> -> busybox` symlink per applet.
pub fn install_busybox(root: &Path) {
    let busybox = busybox_binary();
    make_dir(root, "/bin", 0o755);
    install_file(root, "/bin/busybox", &busybox, 0o755);
    for applet in busybox_applets(&busybox) {
        make_symlink(root, &format!("/bin/{applet}"), "busybox");
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), written to `path`.
fn write_prng_file(path: &Path, len: usize, seed: u64) {
    ensure_parent(path);
    let file = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut w = BufWriter::new(file);
    let mut x = seed;
    let mut left = len;
    while left > 0 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let bytes = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let n = left.min(8);
        w.write_all(&bytes[..n]).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        left -= n;
    }
    w.flush().unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Text fixtures of the busybox rootfs, shared with the tests that check them.
pub mod busybox_text {
    /// `/data/words.txt`
    pub const WORDS: &str = "pear\napple\nfig\nbanana\napple\ncherry\ndate\nfig\nelderberry\ngrape\nbanana\nkiwi\nlemon\nmango\napple pie\nfoo bar baz\nfoobar\n";
    /// `/data/numbers.txt`
    pub const NUMBERS: &str = "42\n7\n-3\n100\n7\n0\n15\n1000\n8\n";
    /// `/data/dups.txt`
    pub const DUPS: &str = "a\na\nb\nc\nc\nc\na\nd\nd\n";
    /// `/data/a.txt`
    pub const A: &str = "one\ntwo\nthree\nfour\nfive\n";
    /// `/data/b.txt`
    pub const B: &str = "one\ntwo\nTHREE\nfour\nfive\nsix\n";
    /// `/data/csv.txt`
    pub const CSV: &str = "name,qty,price\napple,3,0.5\npear,10,0.25\nfig,7,1.5\n";
}

fn build_busybox_rootfs(root: &Path) {
    use busybox_text::*;
    set_mode(root, 0o755);
    install_busybox(root);
    make_dev_nodes(root);
    make_dir(root, "/usr/bin", 0o755);
    make_dir(root, "/root", 0o700);
    make_dir(root, "/tmp", 0o1777);
    make_dir(root, "/etc", 0o755);
    write_file(
        root,
        "/etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    );
    write_file(root, "/etc/group", b"root:x:0:\ndaemon:x:1:\nusers:x:100:\nnogroup:x:65534:\n", 0o644);
    make_dir(root, "/data", 0o755);
    write_file(root, "/data/hello.txt", HELLO_TEXT.as_bytes(), 0o644);
    write_file(root, "/data/words.txt", WORDS.as_bytes(), 0o644);
    write_file(root, "/data/count.sh", b"n=0\nwhile read l; do n=$((n+1)); done\necho lines $n\n", 0o755);
    write_file(root, "/data/numbers.txt", NUMBERS.as_bytes(), 0o644);
    write_file(root, "/data/dups.txt", DUPS.as_bytes(), 0o644);
    write_file(root, "/data/a.txt", A.as_bytes(), 0o644);
    write_file(root, "/data/b.txt", B.as_bytes(), 0o644);
    write_file(root, "/data/csv.txt", CSV.as_bytes(), 0o644);
    write_prng_file(&host_path(root, "/data/10m.bin"), TEN_MIB, 0x0123_4567_89ab_cdef);
    set_mode(&host_path(root, "/data/10m.bin"), 0o644);
    make_dir(root, "/data/dir", 0o755);
    write_file(root, "/data/dir/a", b"a\n", 0o644);
    write_file(root, "/data/dir/b", b"bb\n", 0o600);
    write_file(root, "/data/dir/c", b"ccc\n", 0o755);
    make_dir(root, "/data/dir/sub", 0o750);
    write_file(root, "/data/dir/sub/deep.txt", b"deep\nfoo inside\n", 0o644);
    make_symlink(root, "/data/dir/lnk", "a");
    make_symlink(root, "/data/link", "hello.txt");
    make_symlink(root, "/data/abslink", "/data/hello.txt");
    make_symlink(root, "/data/chain", "abslink");
    make_symlink(root, "/data/dirlink", "dir/sub");
    make_symlink(root, "/data/dangling", "nowhere");
}

/// A busybox rootfs shared (read-only) by the busybox tests: `/bin/busybox`
/// with applet symlinks, `/etc/passwd`, `/etc/group`, text fixtures and
/// `/data/10m.bin` (10 MiB of deterministic bytes). Built once per busybox
/// binary and layout version and cached under `cache_dir()/rootfs`.
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let busybox = busybox_binary();
            let mut h = DefaultHasher::new();
            h.write_u32(BUSYBOX_ROOTFS_VERSION);
            hash_bytes(&mut h, &fs::read(&busybox).unwrap_or_else(|e| panic!("read {}: {e}", busybox.display())));
            let parent = cache_dir().join("rootfs");
            let name = format!("busybox-{:016x}", h.finish());
            let final_dir = parent.join(&name);
            // The marker sits beside the tree so that the guest never sees it.
            let marker = parent.join(format!("{name}.complete"));
            if final_dir.is_dir() && marker.is_file() {
                return final_dir;
            }
            fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", parent.display()));
            let tmp = parent.join(format!(".build-{}-{}", std::process::id(), next_count()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("mkdir {}: {e}", tmp.display()));
            build_busybox_rootfs(&tmp);
            let _ = fs::remove_file(&marker);
            let _ = fs::remove_dir_all(&final_dir);
            fs::rename(&tmp, &final_dir)
                .unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), final_dir.display()));
            fs::write(&marker, b"").unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
            final_dir
        })
        .clone()
}

// ---------------------------------------------------------------------------
// OCI bundles
// ---------------------------------------------------------------------------

/// The guest process of a bundle.
#[derive(Clone, Debug)]
pub struct Process {
    /// `process.args`; `args[0]` is the path executed.
    pub args: Vec<String>,
    /// `process.env` as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `process.cwd`.
    pub cwd: String,
}

impl Process {
    /// A process with the default environment ([`GUEST_ENV`]) and cwd `/`.
    pub fn new<S: AsRef<str>>(args: &[S]) -> Process {
        Process {
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            env: GUEST_ENV.iter().map(|s| s.to_string()).collect(),
            cwd: "/".to_string(),
        }
    }

    /// `/bin/sh -c SCRIPT`.
    pub fn sh(script: &str) -> Process {
        Process::new(&["/bin/sh", "-c", script])
    }

    /// Replaces the working directory.
    pub fn cwd(mut self, cwd: &str) -> Process {
        self.cwd = cwd.to_string();
        self
    }
}

/// A minimal, valid OCI runtime config for `process`, with `root.path` = `root_path`.
/// The names of the capabilities in this process's bounding set.
pub fn host_capabilities() -> Vec<&'static str> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    syscalls::flags::cap::NAMES.iter().enumerate().filter(|(i, _)| bnd & (1 << i) != 0).map(|(_, n)| *n).collect()
}

pub fn oci_config(process: &Process, root_path: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0, "umask": 18 },
            "args": process.args,
            "env": process.env,
            "cwd": process.cwd,
            "noNewPrivileges": true,
            // The capabilities a native root run has (this process's
            // bounding set: runc cannot grant more).
            "capabilities": {
                "bounding": host_capabilities(),
                "effective": host_capabilities(),
                "permitted": host_capabilities()
            }
        },
        "root": { "path": root_path, "readonly": true },
        "hostname": HOSTNAME,
        "mounts": [],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "network" }
            ]
        }
    })
}

/// The mounts runc comparisons give both runtimes: /proc (runc itself
/// needs it), /sys, and tmpfs mounts on /dev, /dev/shm and /tmp.
pub fn standard_mounts() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({ "destination": "/proc", "type": "proc", "source": "proc" }),
        // As `runc spec` has it. Without a /dev mount runc makes its
        // device nodes and the /dev/ptmx symlink in the rootfs itself,
        // and runs sharing a rootfs race on them ("symlink pts/ptmx:
        // file exists"). Cordon serves its devfs at /dev either way.
        serde_json::json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        serde_json::json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }),
        serde_json::json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["mode=1777", "size=65536k"] }),
        serde_json::json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777", "size=65536k"] }),
    ]
}

/// The devpts mount of `runc spec` (terminals need it under runc).
pub fn devpts_mount() -> serde_json::Value {
    serde_json::json!({
        "destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    })
}

/// An OCI bundle directory: `config.json` plus a rootfs.
pub struct Bundle {
    /// The bundle directory (`cordon run --bundle`).
    pub dir: PathBuf,
    /// The rootfs on the host.
    pub rootfs: PathBuf,
    /// `root.path` as written in config.json.
    root_path: String,
}

impl Bundle {
    /// A bundle at `dir` with its own empty rootfs at `dir/rootfs` (`root.path` "rootfs").
    pub fn new(dir: &Path) -> Bundle {
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&rootfs).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", rootfs.display()));
        set_mode(dir, 0o755);
        set_mode(&rootfs, 0o755);
        Bundle { dir: dir.to_path_buf(), rootfs, root_path: "rootfs".to_string() }
    }

    /// A bundle at `dir` whose `root.path` is the absolute path of a shared rootfs.
    pub fn shared(dir: &Path, rootfs: &Path) -> Bundle {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", dir.display()));
        set_mode(dir, 0o755);
        Bundle {
            dir: dir.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            root_path: rootfs.to_string_lossy().into_owned(),
        }
    }

    /// Writes `config.json` for `process`.
    pub fn write_config(&self, process: &Process) {
        self.write_config_value(&oci_config(process, &self.root_path));
    }

    /// Writes `config.json` verbatim.
    pub fn write_config_value(&self, config: &serde_json::Value) {
        let text = serde_json::to_string_pretty(config).expect("serialize config.json");
        fs::write(self.dir.join("config.json"), text)
            .unwrap_or_else(|e| panic!("write config.json in {}: {e}", self.dir.display()));
    }
}

// ---------------------------------------------------------------------------
// Running with a deadline
// ---------------------------------------------------------------------------

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// Did not finish before the deadline and was killed.
    TimedOut,
}

impl Status {
    fn from_exit(st: ExitStatus) -> Status {
        match (st.code(), st.signal()) {
            (Some(code), _) => Status::Exited(code),
            (None, Some(sig)) => Status::Signaled(sig),
            (None, None) => Status::Exited(-1),
        }
    }

    /// The status as a shell reports it: the exit code, or 128+N for signal N.
    pub fn shell_code(self) -> Option<i32> {
        match self {
            Status::Exited(c) => Some(c),
            Status::Signaled(s) => Some(128 + s),
            Status::TimedOut => None,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit code {c}"),
            Status::Signaled(s) => write!(f, "killed by signal {s} (shell status {})", 128 + s),
            Status::TimedOut => write!(f, "timed out (killed)"),
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The command line, for messages.
    pub command: String,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub status: Status,
    /// Wall-clock time until exit.
    pub elapsed: Duration,
    /// Some process still held stdout or stderr open 10 s after the exit
    /// (something was left running); the output may be incomplete.
    pub pipes_left_open: bool,
}

impl RunOutput {
    /// stdout as (lossy) UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as (lossy) UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

fn collect<R: Read + Send + 'static>(mut r: R) -> Collector {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let b = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => b.lock().expect("collector lock").extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    Collector { buf, done }
}

impl Collector {
    /// Waits until EOF or `deadline`; returns the bytes and whether EOF was reached.
    fn finish(self, deadline: Instant) -> (Vec<u8>, bool) {
        let wait = deadline.saturating_duration_since(Instant::now());
        let eof = self.done.recv_timeout(wait).is_ok();
        let data = std::mem::take(&mut *self.buf.lock().expect("collector lock"));
        (data, eof)
    }
}

fn kill_group(pgid: i32) {
    // SAFETY: kill has no memory-safety preconditions; `pgid` is the process
    // group of a child we spawned and have not reaped yet, so it cannot name
    // an unrelated group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Spawns `cmd` (stdin from /dev/null, stdout and stderr captured, in a new
/// process group) and waits at most `timeout`; on timeout the whole process
/// group is killed with SIGKILL.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> io::Result<RunOutput> {
    let (child, command, start) = spawn_piped(&mut cmd)?;
    Ok(wait_with_timeout(child, command, start, timeout))
}

/// Spawns `cmd` with stdin from /dev/null, stdout and stderr piped, in a new
/// process group; returns the child, its command line and the start time, for
/// [`wait_with_timeout`].
pub fn spawn_piped(cmd: &mut Command) -> io::Result<(Child, String, Instant)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let command = describe(cmd);
    let start = Instant::now();
    let child = cmd.spawn()?;
    Ok((child, command, start))
}

/// Waits for a spawned child (stdout and stderr piped, in its own process
/// group) like [`run_with_timeout`].
pub fn wait_with_timeout(mut child: Child, command: String, start: Instant, timeout: Duration) -> RunOutput {
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    let out = collect(child.stdout.take().expect("stdout is piped"));
    let err = collect(child.stderr.take().expect("stderr is piped"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, elapsed) = match rx.recv_timeout(timeout) {
        Ok(st) => (Status::from_exit(st.expect("wait for child")), start.elapsed()),
        Err(_) => {
            kill_group(pid);
            let _ = rx.recv_timeout(Duration::from_secs(10));
            (Status::TimedOut, start.elapsed())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (stdout, out_eof) = out.finish(deadline);
    let (stderr, err_eof) = err.finish(deadline);
    if !(out_eof && err_eof) {
        // Something of the group still holds the pipes: do not let it outlive the test.
        kill_group(pid);
    }
    RunOutput { command, stdout, stderr, status, elapsed, pipes_left_open: !(out_eof && err_eof) }
}

/// Runs `process` natively in a chroot of `rootfs`, as close to the sandbox as
/// possible: same argv and environment, cwd from the process, no
/// supplementary groups, umask 022, fds above 2 not inherited, and a new UTS
/// namespace whose hostname is [`HOSTNAME`].
pub fn run_native(rootfs: &Path, process: &Process) -> RunOutput {
    let root = CString::new(rootfs.as_os_str().as_bytes()).expect("rootfs path has no NUL");
    let cwd = CString::new(process.cwd.as_bytes()).expect("cwd has no NUL");
    let mut cmd = Command::new(&process.args[0]);
    cmd.args(&process.args[1..]).env_clear();
    for kv in &process.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        cmd.env(k, v);
    }
    let setup = move || native_child_setup(&root, &cwd);
    // SAFETY: `pre_exec` runs `setup` in the forked child before exec, where
    // only async-signal-safe work is allowed: `native_child_setup` makes raw
    // system calls on buffers allocated before the fork (`root` and `cwd` are
    // moved into the closure), takes no locks and does not allocate.
    unsafe {
        cmd.pre_exec(setup);
    }
    // A program copied into the rootfs just now can be briefly "text busy":
    // another test thread may have forked while the copy's fd was open, and
    // that child holds it until its own exec. Retry for a while.
    let mut tries = 0;
    let spawned = loop {
        match spawn_piped(&mut cmd) {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                thread::sleep(Duration::from_millis(20));
            }
            other => break other,
        }
    };
    match spawned {
        Ok((child, command, start)) => {
            let mut out = wait_with_timeout(child, command, start, run_timeout());
            out.command = format!("chroot {} {}", rootfs.display(), out.command);
            out
        }
        Err(e) => panic!("native run of {:?} in chroot {} failed to start: {e}", process.args, rootfs.display()),
    }
}

/// Runs in the forked child of [`run_native`] before exec: a new UTS namespace
/// named [`HOSTNAME`], chroot into `root`, chdir to `cwd`, no supplementary
/// groups, umask 022, and every inherited fd above stderr close-on-exec.
/// Only raw system calls: it must not allocate or lock.
fn native_child_setup(root: &CString, cwd: &CString) -> io::Result<()> {
    let fail = || Err(io::Error::last_os_error());
    // SAFETY: unshare takes no pointers.
    if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
        return fail();
    }
    let name = HOSTNAME.as_bytes();
    // SAFETY: `name` points to `name.len()` readable bytes of a 'static string.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        return fail();
    }
    // SAFETY: `root` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::chroot(root.as_ptr()) } != 0 {
        return fail();
    }
    // SAFETY: `cwd` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
        return fail();
    }
    // SAFETY: a zero-length list with a null pointer is valid for setgroups.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return fail();
    }
    // SAFETY: umask takes no pointers and cannot fail.
    unsafe { libc::umask(0o022) };
    // The sandbox starts the guest with only fds 0-2. Mark the others
    // close-on-exec (CLOSE_RANGE_CLOEXEC = 4) rather than closing them, so
    // std's exec-error pipe keeps working; failure (old kernel) is harmless.
    // SAFETY: close_range takes no pointers.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32) };
    Ok(())
}

/// Extra global flags for every cordon invocation (`CORDON_TEST_FLAGS`, and
/// `--debug-log DIR --strace` with `CORDON_TEST_DEBUG`).
fn cordon_global_flags(log_dir: Option<&Path>) -> Vec<String> {
    let mut flags: Vec<String> =
        std::env::var("CORDON_TEST_FLAGS").unwrap_or_default().split_whitespace().map(String::from).collect();
    if let Some(dir) = log_dir {
        flags.push("--debug-log".into());
        flags.push(dir.to_string_lossy().into_owned());
        flags.push("--strace".into());
    }
    flags
}

/// A `cordon --root STATE_ROOT [test flags]` command, ready for a subcommand.
/// The runc binary the comparisons run: `CORDON_RUNC`, or `runc` on PATH.
pub fn runc_bin() -> PathBuf {
    std::env::var_os("CORDON_RUNC").map_or_else(|| PathBuf::from("runc"), PathBuf::from)
}

pub fn cordon_command(state_root: &Path, log_dir: Option<&Path>) -> Command {
    let mut cmd = Command::new(cordon_bin());
    cmd.arg("--root").arg(state_root);
    cmd.args(cordon_global_flags(log_dir));
    cmd
}

/// `cordon --root ROOT delete --force` of every container under `ROOT`
/// (what a failed test leaves must not outlive it).
pub fn delete_all_containers(root: &Path) {
    for e in fs::read_dir(root).into_iter().flatten().flatten() {
        let _ = Command::new(cordon_bin())
            .arg("--root")
            .arg(root)
            .args(["delete", "--force"])
            .arg(e.file_name())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs `cordon <args>` with a deadline (no `--root` added).
pub fn run_cordon_args<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> RunOutput {
    let mut cmd = Command::new(cordon_bin());
    cmd.args(args);
    run_with_timeout(cmd, run_timeout()).unwrap_or_else(|e| panic!("spawn cordon: {e}"))
}

/// Runs `cordon --root STATE_ROOT run --bundle BUNDLE ID` with a deadline.
pub fn run_cordon(state_root: &Path, bundle: &Path, id: &str, log_dir: Option<&Path>) -> RunOutput {
    let mut cmd = cordon_command(state_root, log_dir);
    cmd.arg("run").arg("--bundle").arg(bundle).arg(id);
    run_with_timeout(cmd, run_timeout()).unwrap_or_else(|e| panic!("spawn cordon: {e}"))
}

// ---------------------------------------------------------------------------
// A test sandbox: temp dir + bundle + state root
// ---------------------------------------------------------------------------

/// Everything one test needs: a temporary directory holding a bundle, a
/// private state root for `cordon --root`, and unique container ids.
pub struct Sandbox {
    /// Short name used in ids and messages.
    pub name: String,
    /// The bundle.
    pub bundle: Bundle,
    /// `cordon --root` for this test.
    pub state_root: PathBuf,
    /// `--debug-log` directory when `CORDON_TEST_DEBUG` is set.
    pub log_dir: Option<PathBuf>,
    /// The last container id used by [`Sandbox::run_cordon`].
    pub last_id: Option<String>,
    // Dropped last: removes everything above.
    tmp: TempDir,
}

impl Sandbox {
    fn with_bundle(name: &str, make: impl FnOnce(&Path) -> Bundle) -> Sandbox {
        require_root();
        let tmp = TempDir::new(name);
        let bundle = make(&tmp.path().join("bundle"));
        let state_root = tmp.path().join("state");
        fs::create_dir_all(&state_root).unwrap_or_else(|e| panic!("mkdir {}: {e}", state_root.display()));
        let log_dir = env_flag("CORDON_TEST_DEBUG").then(|| tmp.path().join("logs"));
        if let Some(dir) = &log_dir {
            let _ = fs::create_dir_all(dir);
        }
        Sandbox { name: name.to_string(), bundle, state_root, log_dir, last_id: None, tmp }
    }

    /// A sandbox whose bundle has its own (empty) rootfs at `bundle/rootfs`.
    pub fn new(name: &str) -> Sandbox {
        Sandbox::with_bundle(name, Bundle::new)
    }

    /// A sandbox whose bundle uses a shared rootfs (absolute `root.path`).
    pub fn with_shared_rootfs(name: &str, rootfs: &Path) -> Sandbox {
        Sandbox::with_bundle(name, |dir| Bundle::shared(dir, rootfs))
    }

    /// The test's temporary directory (the bundle is `tmp/bundle`).
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// The rootfs on the host.
    pub fn rootfs(&self) -> &Path {
        &self.bundle.rootfs
    }

    /// Runs `process` natively in a chroot of the rootfs.
    pub fn run_native(&self, process: &Process) -> RunOutput {
        run_native(&self.bundle.rootfs, process)
    }

    /// Writes config.json for `process` and runs it with `cordon run` under a fresh id.
    pub fn run_cordon(&mut self, process: &Process) -> RunOutput {
        self.bundle.write_config(process);
        let id = unique_id(&self.name);
        self.last_id = Some(id.clone());
        run_cordon(&self.state_root, &self.bundle.dir, &id, self.log_dir.as_deref())
    }

    /// Writes `config` as config.json and runs `cordon [flags] run` under a
    /// fresh id.
    pub fn run_cordon_config(&mut self, config: &serde_json::Value, flags: &[&str]) -> RunOutput {
        self.bundle.write_config_value(config);
        let id = unique_id(&self.name);
        self.last_id = Some(id.clone());
        let mut cmd = cordon_command(&self.state_root, self.log_dir.as_deref());
        cmd.args(flags).arg("run").arg("--bundle").arg(&self.bundle.dir).arg(&id);
        run_with_timeout(cmd, run_timeout()).unwrap_or_else(|e| panic!("spawn cordon: {e}"))
    }

    /// Writes `config` as config.json and runs `runc run` on the bundle.
    pub fn run_runc_config(&mut self, config: &serde_json::Value) -> RunOutput {
        self.bundle.write_config_value(config);
        let runc_root = self.tmp.path().join("runc");
        let id = unique_id(&self.name);
        let mut cmd = Command::new(runc_bin());
        cmd.arg("--root").arg(&runc_root).arg("run").arg("--bundle").arg(&self.bundle.dir).arg(&id);
        run_with_timeout(cmd, run_timeout()).unwrap_or_else(|e| panic!("spawn runc: {e}"))
    }

    /// `config.json` of [`oci_config`] for this bundle's rootfs.
    pub fn config(&self, process: &Process) -> serde_json::Value {
        oci_config(process, &self.bundle.root_path)
    }

    /// Runs `process` both ways and asserts the same stdout and status.
    /// Returns the cordon run for further checks.
    pub fn assert_same(&mut self, process: &Process, opts: &Compare) -> RunOutput {
        let native = self.run_native(process);
        let cordon = self.run_cordon(process);
        let logs = self.debug_logs();
        assert_same_output(&self.name, "native", &native, &cordon, opts, &logs);
        cordon
    }

    /// Runs `process` under runc and under cordon on the same bundle and
    /// asserts the same stdout and status, both with /proc (runc itself
    /// needs it), /sys, and tmpfs mounts on /dev, /dev/shm and /tmp.
    pub fn assert_same_as_runc(&mut self, process: &Process, opts: &Compare) -> RunOutput {
        self.assert_same_as_runc_with(process, &[], opts)
    }

    /// [`Sandbox::assert_same_as_runc`] with `extra` mounts (config.json
    /// entries) after the standard ones.
    pub fn assert_same_as_runc_with(
        &mut self,
        process: &Process,
        extra: &[serde_json::Value],
        opts: &Compare,
    ) -> RunOutput {
        let mut config = oci_config(process, &self.bundle.root_path);
        let mut mounts = standard_mounts();
        mounts.extend(extra.iter().cloned());
        config["mounts"] = serde_json::Value::Array(mounts);
        self.bundle.write_config_value(&config);
        let runc_root = self.tmp.path().join("runc");
        let id = unique_id(&self.name);
        let mut cmd = Command::new(runc_bin());
        cmd.arg("--root").arg(&runc_root).arg("run").arg("--bundle").arg(&self.bundle.dir).arg(&id);
        let runc = run_with_timeout(cmd, run_timeout()).unwrap_or_else(|e| panic!("spawn runc: {e}"));
        // The same config.json for cordon.
        let id = unique_id(&self.name);
        self.last_id = Some(id.clone());
        let cordon = run_cordon(&self.state_root, &self.bundle.dir, &id, self.log_dir.as_deref());
        let logs = self.debug_logs();
        assert_same_output(&self.name, "runc", &runc, &cordon, opts, &logs);
        cordon
    }

    /// The tail of every `--debug-log` file, for failure messages.
    pub fn debug_logs(&self) -> String {
        let Some(dir) = &self.log_dir else {
            return String::new();
        };
        let mut s = String::new();
        let mut files: Vec<PathBuf> =
            fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        files.sort();
        for f in files {
            let data = fs::read(&f).unwrap_or_default();
            let _ = writeln!(s, "--- debug log {} (last 8 KiB) ---", f.display());
            s.push_str(&String::from_utf8_lossy(tail(&data, 8192)));
            s.push('\n');
        }
        s
    }
}

// ---------------------------------------------------------------------------
// Comparing runs
// ---------------------------------------------------------------------------

/// How to compare a native run with a cordon run.
#[derive(Clone, Debug, Default)]
pub struct Compare {
    /// The status (shell style) the native run must have; a mismatch means the
    /// test itself is wrong, not cordon. `None` accepts any native status.
    pub expect_status: Option<i32>,
    /// Sort stdout lines before comparing (for output whose order depends on
    /// directory order or the environment's order).
    pub sort_lines: bool,
}

impl Compare {
    /// Expect this native status.
    pub fn status(code: i32) -> Compare {
        Compare { expect_status: Some(code), sort_lines: false }
    }

    /// Sort stdout lines before comparing.
    pub fn sorted(mut self) -> Compare {
        self.sort_lines = true;
        self
    }
}

fn tail(data: &[u8], n: usize) -> &[u8] {
    &data[data.len().saturating_sub(n)..]
}

fn head(data: &[u8], n: usize) -> &[u8] {
    &data[..data.len().min(n)]
}

fn normalize(data: &[u8], sort_lines: bool) -> Vec<u8> {
    if !sort_lines {
        return data.to_vec();
    }
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.sort();
    let mut out = Vec::with_capacity(data.len() + 1);
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

/// Where two outputs first differ, described for humans.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let al: Vec<&[u8]> = a.split(|&c| c == b'\n').collect();
    let bl: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
    for i in 0..al.len().max(bl.len()) {
        let x = al.get(i);
        let y = bl.get(i);
        if x != y {
            let show = |l: Option<&&[u8]>| match l {
                Some(l) => format!("{:?}", String::from_utf8_lossy(head(l, 300))),
                None => "<end of output>".to_string(),
            };
            return format!("first difference at line {}:\n  native: {}\n  cordon: {}", i + 1, show(x), show(y));
        }
    }
    "outputs are equal".to_string()
}

fn show_block(title: &str, data: &[u8], limit: usize) -> String {
    let mut s = format!("--- {title} ({} bytes", data.len());
    if data.len() > limit {
        let _ = write!(s, ", first {limit} shown");
    }
    s.push_str(") ---\n");
    s.push_str(&String::from_utf8_lossy(head(data, limit)));
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Asserts that `cordon` produced the same stdout and status as `native`.
/// On mismatch, panics with both outputs, both statuses, the first differing
/// line, cordon's stderr and `extra` (debug logs).
pub fn assert_same_output(
    name: &str,
    label: &str,
    native: &RunOutput,
    cordon: &RunOutput,
    opts: &Compare,
    extra: &str,
) {
    let mut problems = Vec::new();
    match native.status {
        Status::TimedOut => problems.push(format!("the {label} run timed out")),
        st => {
            if let Some(want) = opts.expect_status {
                if st.shell_code() != Some(want) {
                    problems.push(format!(
                        "the {label} run ended with {st}, expected status {want}: the test \
                         program or fixture is wrong, not cordon"
                    ));
                }
            }
        }
    }
    match cordon.status {
        Status::TimedOut => problems.push("cordon timed out and was killed".to_string()),
        Status::Signaled(sig) => problems.push(format!(
            "the cordon process itself was killed by signal {sig} (a guest killed by a signal \
             must make cordon exit with 128+N, not die)"
        )),
        Status::Exited(_) => {}
    }
    if native.status.shell_code() != cordon.status.shell_code() {
        problems.push(format!("status differs: {label} {}, cordon {}", native.status, cordon.status));
    }
    let n = normalize(&native.stdout, opts.sort_lines);
    let c = normalize(&cordon.stdout, opts.sort_lines);
    if n != c {
        problems.push(format!(
            "stdout differs{}; {}",
            if opts.sort_lines { " (lines sorted)" } else { "" },
            first_difference(&n, &c)
        ));
    }
    if cordon.pipes_left_open {
        problems
            .push("cordon's stdout/stderr were still open 10 s after it exited: a process was left behind".to_string());
    }
    if problems.is_empty() {
        return;
    }
    let mut msg = format!("[{name}] cordon differs from {label}:\n");
    for p in &problems {
        let _ = writeln!(msg, "  * {p}");
    }
    let _ = writeln!(msg, "{label}: {} -> {}", native.command, native.status);
    let _ = writeln!(msg, "cordon: {} -> {} after {:.2?}", cordon.command, cordon.status, cordon.elapsed);
    msg.push_str(&show_block(&format!("{label} stdout"), &native.stdout, 8192));
    msg.push_str(&show_block("cordon stdout", &cordon.stdout, 8192));
    msg.push_str(&show_block(&format!("{label} stderr"), &native.stderr, 4096));
    msg.push_str(&show_block("cordon stderr", tail(&cordon.stderr, 8192), 8192));
    msg.push_str(extra);
    panic!("{msg}");
}

/// Asserts a cordon run ended with `code` (and did not time out or crash),
/// printing its output otherwise.
pub fn assert_status(out: &RunOutput, code: i32) {
    assert!(
        out.status == Status::Exited(code),
        "expected {} to exit with {code}, got {}\n{}{}",
        out.command,
        out.status,
        show_block("stdout", &out.stdout, 4096),
        show_block("stderr", &out.stderr, 4096)
    );
}

// ---------------------------------------------------------------------------
// Leftovers
// ---------------------------------------------------------------------------

/// Processes (other than this one) whose command line contains one of `needles`,
/// as `(pid, cmdline)`.
pub fn processes_mentioning(needles: &[&str]) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().any(|n| !n.is_empty() && cmdline.contains(n)) {
            found.push((pid, cmdline.trim_end().to_string()));
        }
    }
    found
}

/// Asserts that container `id` left nothing behind: no `<state_root>/<id>`
/// and no process whose command line names the id or the state root.
/// Waits up to 5 s for things to settle.
pub fn assert_nothing_left(state_root: &Path, id: &str) {
    let root = state_root.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state_exists = state_root.join(id).exists();
        let procs = processes_mentioning(&[id, &root]);
        if !state_exists && procs.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let mut msg = format!("container {id} left things behind:\n");
            if state_exists {
                let _ = writeln!(msg, "  state directory {}", state_root.join(id).display());
            }
            for (pid, cmd) in procs {
                let _ = writeln!(msg, "  process {pid}: {cmd}");
            }
            panic!("{msg}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// A person at a terminal
// ---------------------------------------------------------------------------

/// `cmd` as a shell command line (its words have no spaces or quotes).
pub fn shell_line(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// tmux with a private server: a person's terminal.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a new 100x30 session.
    pub fn start(command: &str) -> Tmux {
        let t = Tmux { socket: unique_id("tmux") };
        let st = t.cmd(&["new-session", "-d", "-s", "t", "-x", "100", "-y", "30", command]).status().expect("tmux");
        assert!(st.success(), "tmux new-session");
        t
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.socket).arg("-f").arg("/dev/null").args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().expect("tmux").success(), "tmux send-keys {keys:?}");
    }

    pub fn pane(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", "t"]).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `command` and Enter, waits until the pane shows it, lets it
    /// start, then sends `key` (C-c, C-z) to its foreground job.
    pub fn type_then_key(&self, command: &str, key: &str) {
        self.keys(&[command, "Enter"]);
        self.wait_for(command, 1);
        thread::sleep(Duration::from_millis(300));
        self.keys(&[key]);
    }

    /// Resizes the window, and gives the resize a moment to arrive.
    pub fn resize(&self, cols: u16, rows: u16) {
        let (x, y) = (cols.to_string(), rows.to_string());
        let st = self.cmd(&["resize-window", "-t", "t", "-x", &x, "-y", &y]).status().expect("tmux");
        assert!(st.success(), "tmux resize-window");
        thread::sleep(Duration::from_millis(300));
    }

    /// Waits until the pane shows `text` `n` times.
    pub fn wait_for(&self, text: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pane = self.pane();
            if pane.matches(text).count() >= n {
                return;
            }
            assert!(Instant::now() < deadline, "the pane never showed {text:?} x{n}:\n{pane}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).output();
    }
}

/// Waits for child `pid` (ours, as a child subreaper) and returns its raw
/// wait status.
pub fn reap(pid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        assert!(r == 0, "waitpid({pid}): not our child ({r})");
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        thread::sleep(Duration::from_millis(5));
    }
}
