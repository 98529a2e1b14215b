#!/usr/bin/env python3
"""Cordon benchmark harness (`make bench`).

Runs the same statically linked C microbenchmarks and start-up workloads
natively, under runc, under runsc (gVisor, ptrace platform) and under Cordon,
interleaving the runtimes rep by rep, and prints a Markdown table of medians
with their spread plus Cordon's ratios.  Then, in tables of their own: the
container lifecycle (create + start + init exit + delete), `ctr run --rm`
through a private containerd, and the resident memory of an idle container.
Raw results go to --json.

Python 3 standard library only.  Must run as root (except --runtimes native).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MICRO_DIR = BENCH_DIR / "micro"
REPO_DIR = BENCH_DIR.parent.parent

DATA_FILE = "/bench/file"          # path inside the container
DATA_FILE_SIZE = 1 << 20           # 1 MiB
BIG_FILE = "/bench/big"            # {big}: seq_read_256m's file
BIG_FILE_SIZE = 256 << 20          # 256 MiB
DIR10K = "/bench/dir10k"           # {dir10k}: readdir_10k's directory
DIR10K_ENTRIES = 10_000            # empty files f00000 ... f09999
SCRATCH = "/scratch"               # {scratch} in a container: a writable bind mount
DELETE_TIMEOUT = 30.0              # seconds for `delete --force` after a failed run


# --------------------------------------------------------------------------
# Benchmarks are data.  To add one: drop a C file in bench/micro/ (it is
# compiled with `gcc -O2 -static` and installed as /bench/<stem> in the
# rootfs) and add a row here.
#
#   kind "micro": the program times itself and prints "<report> <ns_per_op>";
#                 argv[1] is the iteration count, argv[2] the data file
#                 (by default; fork_exec's is the program it executes).
#   kind "wall":  the harness times the whole `runtime run` command (ms).
#
# argv templates may use {iters} (default iterations x --scale), {file}
# (the 1 MiB data file) and {bench} (the directory of the programs): in a
# container /bench/file and /bench, natively the same through relative paths,
# where the program runs with cwd = the rootfs.  Likewise {big} (/bench/big,
# 256 MiB) and {dir10k} (/bench/dir10k, 10,000 empty files): the harness
# builds these two only when a selected row names them, once per invocation,
# and hard-links them only into the bundles of those rows.
#
# {scratch} is a writable directory, empty when the program starts: a fresh
# host directory per row, TMP/scratch/<row>, emptied before every run.  In a
# container it is /scratch, a bind mount of that directory (type "bind",
# options rbind,rw, in the config.json of that row only), so the runtime
# serves it as a host-backed mount, not as tmpfs; natively the program gets
# the host directory's absolute path.  Only rows on the harness's rootfs may
# use it.
#
# rootfs "" is the harness's own rootfs (only /bench and /bin/true); a row may
# name a system rootfs from SYSTEM_ROOTFS instead, e.g. "debian" for
# python3.  That one is used in place and read-only: config.json's root.path
# points at it, and natively the program runs in a chroot of it (cwd /, the
# container's environment), with the container's paths.
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Bench:
    name: str
    kind: str                      # "micro" | "wall"
    program: str                   # absolute path inside the rootfs
    argv: tuple = ("{iters}", "{file}")
    iters: int = 0                 # default iteration count (micro)
    report: str = ""               # name printed by the program (default: name)
    rootfs: str = ""               # "": the harness's rootfs; else a SYSTEM_ROOTFS key
    expect: str = ""               # wall rows: the stdout required (whitespace-stripped)
    about: str = ""

    @property
    def unit(self) -> str:
        return "ns/op" if self.kind == "micro" else "ms"

    @property
    def report_name(self) -> str:
        return self.report or self.name

    def uses(self, var: str) -> bool:
        """Whether an argv template names {var} (e.g. "big", "scratch")."""
        return any("{" + var + "}" in a for a in self.argv)


BENCHMARKS = [
    Bench("getpid", "micro", "/bench/getpid", iters=200_000,
          about="raw syscall(SYS_getpid): round trip of the cheapest syscall"),
    Bench("open_close", "micro", "/bench/open_close", iters=20_000,
          about="open(/bench/file, O_RDONLY) + close"),
    Bench("pread_4k", "micro", "/bench/pread_4k", iters=50_000,
          about="pread 4 KiB at offset 0 of a 1 MiB file"),
    Bench("mmap_touch_1m", "micro", "/bench/mmap_touch_1m", iters=2_000,
          about="mmap 1 MiB anon private, write every 4 KiB page, munmap"),
    Bench("fork_wait", "micro", "/bench/fork_wait", iters=2_000,
          about="fork + _exit + waitpid"),
    Bench("fork_exec", "micro", "/bench/fork_exec", argv=("{iters}", "{bench}/true"),
          iters=500, about="fork + execve of the static /bench/true + waitpid"),
    Bench("pipe_pingpong", "micro", "/bench/pipe_pingpong", iters=10_000,
          about="one byte there and back between two processes over two pipes"),
    Bench("pipe_throughput", "micro", "/bench/pipe_throughput", iters=5_000,
          about="64 KiB write into a pipe + 64 KiB read by a forked child, per chunk"),
    Bench("thread_create", "micro", "/bench/thread_create", iters=5_000,
          about="pthread_create of a thread that returns at once + pthread_join"),
    Bench("stat", "micro", "/bench/stat", iters=400_000,
          about="stat(2) of /bench/file"),
    Bench("seq_read_256m", "micro", "/bench/seq_read_256m", argv=("{iters}", "{big}"),
          iters=8, about="sequential read of a 256 MiB file in 1 MiB read()s; "
          "iters = passes, one op = 1 MiB (ns per MiB)"),
    Bench("create_unlink", "micro", "/bench/create_unlink", argv=("{iters}", "{scratch}"),
          iters=20_000, about="create + write 4 KiB + close + unlink in a writable "
          "bind-mounted host dir, per file"),
    Bench("readdir_10k", "micro", "/bench/readdir_10k", argv=("{iters}", "{dir10k}"),
          iters=100, about="opendir + readdir to the end + closedir of a directory "
          "of 10,000 files, per listing"),
    Bench("fsstress", "micro", "/bench/fsstress", argv=("{iters}", "{scratch}"),
          iters=50, about="seeded mix of create/write/read/stat/rename/unlink/mkdir/"
          "rmdir in a writable bind-mounted host dir; iters x 1000 actions, per op"),
    Bench("start_true", "wall", "/bin/true", argv=(),
          about="wall time of the whole `run` of a static /bin/true"),
    Bench("run_echo", "wall", "/bench/hello", argv=(), expect="hello",
          about="wall time of the whole `run` of a static program that writes "
          "'hello' to stdout (checked)"),
    Bench("python_pass", "wall", "/usr/bin/python3", argv=("-c", "pass"), rootfs="debian",
          about="wall time of the whole `run` of `python3 -c pass` (Debian rootfs)"),
]

# Extra installs: rootfs path -> source stem in bench/micro/.
EXTRA_INSTALLS = {"/bin/true": "true"}


# --------------------------------------------------------------------------
# Rows that are not one program timed per run but sequences of runtime
# commands, printed in tables of their own after the main one:
#
#   create_start_delete  (every rep, interleaved like the rows above)
#       `create --bundle B --pid-file F ID` + `start ID` + wait for the
#       init (the pid in F, static /bin/true) to exit + `delete ID`, in ms.
#   ctr_run_rm           (after the reps above)
#       `ctr run --rm` of busybox `echo hello` through a private containerd,
#       with tests/containerd/containerd-harness.sh (`bench 1 TYPE BINARY`
#       per rep and runtime; its own untimed warm-up run first).  The row
#       ctr_run_rm_shim is Cordon's own shim, io.containerd.cordon.v1.
#   idle_memory          (once, at the end)
#       Rss and Pss (MiB) summed over the host processes of one idle
#       container whose init is /bench/idle (pause() forever).
#   pod_idle_memory      (once, at the end)
#       The same over a pod of three such containers: the pod's sandbox
#       container and two containers annotated with its sandbox id, as CRI
#       creates them (one sandbox for runsc and cordon; runc ignores the
#       annotations).
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Extra:
    name: str
    kind: str                      # "lifecycle" | "containerd" | "memory"
    unit: str
    about: str


EXTRAS = [
    Extra("create_start_delete", "lifecycle", "ms",
          "wall time of `create --bundle B --pid-file F ID` + `start ID` + waiting "
          "for the init (static /bin/true) to exit + `delete ID`; no native figure"),
    Extra("ctr_run_rm", "containerd", "ms",
          "`ctr run --rm` of busybox `echo hello` through a private containerd "
          "(containerd-harness.sh bench): runc shim + runc / runsc / cordon; "
          "row ctr_run_rm_shim: Cordon's shim io.containerd.cordon.v1 if built"),
    Extra("idle_memory", "memory", "MiB",
          "Rss and Pss from /proc/PID/smaps_rollup summed over the host processes "
          "of one idle container (init /bench/idle: pause() forever), measured once"),
    Extra("pod_idle_memory", "memory", "MiB",
          "the same over an idle pod: a sandbox container and two containers "
          "annotated as CRI does (io.kubernetes.cri.container-type, sandbox-id), "
          "which runsc and cordon run in one sandbox and runc as three containers"),
]

LIFECYCLE_INIT = "/bin/true"       # create_start_delete's init
IDLE_INIT = "/bench/idle"          # idle_memory's init (bench/micro/idle.c)
IDLE_SETTLE = 2.0                  # seconds between `start` and the measurement

CTRD_HARNESS = REPO_DIR / "tests/containerd/containerd-harness.sh"
CTRD_RUNC_TYPE = "io.containerd.runc.v2"
CORDON_SHIM_TYPE = "io.containerd.cordon.v1"
CTRD_START_TIMEOUT = 600.0         # `start`: containerd up + image built and imported
CTRD_STOP_TIMEOUT = 120.0


def cordon_shim_bin() -> Path:
    return Path(os.environ.get("CORDON_SHIM_BIN",
                               str(REPO_DIR / "target/x86_64-unknown-linux-gnu/release/containerd-shim-cordon-v1")))


# Names --only and --skip accept besides row names: group -> rows.
GROUPS = {
    "micro": [b.name for b in BENCHMARKS if b.kind == "micro"],
    "wall": [b.name for b in BENCHMARKS if b.kind == "wall"],
    "lifecycle": ["create_start_delete"],
    "containerd": ["ctr_run_rm"],
    "memory": ["idle_memory", "pod_idle_memory"],
}

# The container's environment (config.json), also given to native runs in a
# system rootfs.
CONTAINER_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def debian_rootfs() -> Path:
    """The Debian bookworm rootfs of the Debian tests (python3, perl, bash):
    $CORDON_DEBIAN_ROOTFS, else what tests/scripts/debian-rootfs.sh prints (it
    builds it with debootstrap once, then reuses its cache)."""
    if os.environ.get("CORDON_DEBIAN_ROOTFS"):
        return Path(os.environ["CORDON_DEBIAN_ROOTFS"])
    script = REPO_DIR / "tests/scripts/debian-rootfs.sh"
    res = subprocess.run([str(script)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        err = " | ".join(res.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{script.name}: exit status {res.returncode}: {err}")
    return Path(lines[-1])


# System rootfs rows may name (Bench.rootfs): name -> how to find it.
SYSTEM_ROOTFS = {"debian": debian_rootfs}


# --------------------------------------------------------------------------
# Runtimes are data too.
# --------------------------------------------------------------------------

@dataclasses.dataclass
class Runtime:
    name: str                      # used by --runtimes
    label: str                     # column title
    binary: str | None = None      # None: native
    flags: tuple = ()              # global flags before the subcommand
    available: bool = True
    version: str = ""
    why_unavailable: str = ""

    @property
    def native(self) -> bool:
        return self.binary is None

    def base(self, state_dir: Path) -> list:
        return [self.binary, "--root", str(state_dir), *self.flags]


def make_runtimes() -> dict:
    cordon_bin = os.environ.get("CORDON_BIN", str(REPO_DIR / "target/x86_64-unknown-linux-gnu/release/cordon"))
    return {
        "native": Runtime("native", "native"),
        "runc": Runtime("runc", "runc", os.environ.get("RUNC_BIN", "runc"),
                        tuple(shlex.split(os.environ.get("RUNC_FLAGS", "")))),
        # kvm hangs on these machines; ptrace + no network is what works.
        "runsc": Runtime("runsc", "runsc-ptrace", os.environ.get("RUNSC_BIN", "runsc"),
                         tuple(shlex.split(os.environ.get(
                             "RUNSC_FLAGS", "--platform=ptrace --network=none")))),
        "cordon": Runtime("cordon", "cordon", cordon_bin,
                          tuple(shlex.split(os.environ.get("CORDON_FLAGS", "")))),
    }


RUNTIME_ALIASES = {"runsc-ptrace": "runsc"}
COLUMN_ORDER = ["native", "runc", "runsc", "cordon"]


def probe_runtime(rt: Runtime) -> None:
    if rt.native:
        rt.version = platform.release()
        return
    path = shutil.which(rt.binary) if os.sep not in rt.binary else rt.binary
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        rt.available = False
        rt.why_unavailable = f"{rt.binary}: not found"
        return
    rt.binary = os.path.abspath(path)
    try:
        rc, _, out, err = spawn_timed([rt.binary, "--version"], None, 10)
    except OSError:
        return
    lines = (out or err).decode(errors="replace").strip().splitlines()
    if rc == 0 and lines:
        rt.version = lines[0]


# --------------------------------------------------------------------------
# Build: C programs, rootfs, one bundle per benchmark.
# --------------------------------------------------------------------------

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_programs(out_dir: Path, cc: str) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for src in sorted(MICRO_DIR.glob("*.c")):
        exe = out_dir / src.stem
        cmd = [cc, "-O2", "-static", "-Wall", "-Wextra", "-o", str(exe), str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"bench: compiling {src.name} failed:\n{res.stderr}")
        built[src.stem] = exe
    return built


# Large rootfs data that only some rows need: template variable -> path in
# the rootfs.  Built only if a selected row names the variable, and linked
# only into the bundles of such rows (see build_bundles).
ROOTFS_ASSETS = {"big": BIG_FILE, "dir10k": DIR10K}


def build_rootfs(rootfs: Path, built: dict, assets: set = frozenset()) -> None:
    """The harness's rootfs; assets: the keys of ROOTFS_ASSETS to build."""
    for d in ("bin", "bench", "proc", "dev", "sys", "tmp", "etc", SCRATCH.lstrip("/")):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    for stem, exe in built.items():
        shutil.copy2(exe, rootfs / "bench" / stem)
    for dest, stem in EXTRA_INSTALLS.items():
        shutil.copy2(built[stem], rootfs / dest.lstrip("/"))
    # Deterministic, non-zero content (not sparse: every block really exists).
    pattern = bytes(range(256)) * 16
    with open(rootfs / DATA_FILE.lstrip("/"), "wb") as f:
        for _ in range(DATA_FILE_SIZE // len(pattern)):
            f.write(pattern)
    if "big" in assets:
        # No zero byte at all (seq_read_256m checks), written for real.
        chunk = (bytes(range(1, 256)) * ((1 << 20) // 255 + 1))[:1 << 20]
        with open(rootfs / BIG_FILE.lstrip("/"), "wb") as f:
            for _ in range(BIG_FILE_SIZE // len(chunk)):
                f.write(chunk)
    if "dir10k" in assets:
        d = rootfs / DIR10K.lstrip("/")
        d.mkdir()
        for i in range(DIR10K_ENTRIES):
            os.close(os.open(d / f"f{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def oci_config(args: list, root_path: str = "rootfs") -> dict:
    """`runc spec` (runc 1.1) defaults, adapted: no terminal, given args,
    read-only root, no cgroup mount.  runsc and cordon use the same bundle."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": list(CONTAINER_ENV),
            "cwd": "/",
            "capabilities": {k: caps for k in
                             ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": root_path, "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                         "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in
                           ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def link_tree(src: Path, dst: Path, skip: tuple = ()) -> None:
    """Copy a directory tree, hard-linking files (cheap per-bundle rootfs);
    skip: absolute paths inside it to leave out."""
    skip = {str(src / p.lstrip("/")) for p in skip}

    def ignore(d, names):
        return [n for n in names if os.path.join(d, n) in skip]
    shutil.copytree(src, dst, copy_function=os.link, symlinks=True,
                    ignore=ignore if skip else None)


def bench_args(b: Bench, iters: int, relative: bool = False,
               scratch: Path | None = None) -> list:
    """argv after the program; relative: paths relative to the rootfs (a
    native run with cwd = the harness's rootfs), else the container's.
    scratch: the host directory {scratch} names natively (absolute)."""
    cut = (lambda p: p.lstrip("/")) if relative else (lambda p: p)
    paths = {k: cut(v) for k, v in ROOTFS_ASSETS.items()}
    scr = str(scratch) if relative and scratch is not None else SCRATCH
    return [a.format(iters=iters, file=cut(DATA_FILE), bench=cut("/bench"),
                     scratch=scr, **paths)
            for a in b.argv]


def scratch_dir(tmp: Path, b: Bench) -> Path:
    """The host directory behind {scratch} for row b."""
    return tmp / "scratch" / b.name


def clear_dir(d: Path) -> None:
    """Empty d (a scratch directory), keeping d itself."""
    for entry in os.scandir(d):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def build_bundles(tmp: Path, master_rootfs: Path, benches: list, iters: dict,
                  system_roots: dict | None = None) -> dict:
    """One bundle per benchmark: a hard-linked copy of the harness's rootfs,
    or, for a row on a system rootfs, just a config.json pointing at it."""
    bundles = {}
    for b in benches:
        bundle = tmp / "bundles" / b.name
        bundle.mkdir(parents=True)
        if b.rootfs:
            root_path = str((system_roots or {})[b.rootfs])
        else:
            link_tree(master_rootfs, bundle / "rootfs",
                      skip=tuple(p for k, p in ROOTFS_ASSETS.items() if not b.uses(k)))
            root_path = "rootfs"
        cfg = oci_config([b.program, *bench_args(b, iters.get(b.name, 0))], root_path)
        if b.uses("scratch"):
            # A host directory, writable, served by the runtime's file path.
            src = scratch_dir(tmp, b)
            src.mkdir(parents=True, exist_ok=True)
            cfg["mounts"].append({"destination": SCRATCH, "type": "bind",
                                  "source": str(src), "options": ["rbind", "rw"]})
        (bundle / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        bundles[b.name] = bundle
    return bundles


# --------------------------------------------------------------------------
# Running and cleaning up.
# --------------------------------------------------------------------------

@dataclasses.dataclass
class RunResult:
    ok: bool
    value: float | None = None     # ns/op (micro) or ms (wall)
    wall_ms: float | None = None
    rc: int | None = None
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    cleanup: str = ""              # what `delete --force` said after a failure
    leftovers: list = dataclasses.field(default_factory=list)
    note: str = ""                 # create_start_delete: how the init's exit was seen


def tail(s: str, n: int = 2000) -> str:
    return s if len(s) <= n else "..." + s[-n:]


def _killpg(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _finish(p: subprocess.Popen, grace: float):
    """Collect what a process that overran wrote, without hanging on pipes a
    surviving grandchild (e.g. the container's init) may still hold."""
    try:
        return p.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _killpg(p)
    try:
        return p.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        for f in (p.stdout, p.stderr):
            if f:
                f.close()
        p.wait()
        return b"", b"(output abandoned: pipe held open by a leftover process)"


def spawn_timed(cmd: list, cwd: str | None, timeout: float, on_timeout=None,
                chroot: str | None = None, env: dict | None = None):
    """Run cmd with stdout/stderr on pipes (runsc writes a regular-file stdout
    at offset 0, so never hand it a file); return (rc, wall ms, stdout,
    stderr), rc None on timeout.  On timeout, on_timeout() (e.g. the
    runtime's `delete --force`) runs first so the runtime can reap its container
    itself; whatever still lives after a grace period is SIGKILLed by
    process group.  chroot: run cmd (an absolute path inside it) in a chroot
    of that directory, cwd /."""
    def enter_root():
        os.chroot(chroot)
        os.chdir("/")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, env=env,
                         preexec_fn=enter_root if chroot else None)
    try:
        out, err = p.communicate(timeout=timeout)
        t1 = time.perf_counter()
        return p.returncode, (t1 - t0) * 1e3, out, err
    except subprocess.TimeoutExpired:
        if on_timeout is not None:
            on_timeout()
            out, err = _finish(p, 10)
        else:
            _killpg(p)
            out, err = _finish(p, 5)
        return None, timeout * 1e3, out or b"", err or b""
    except BaseException:
        _killpg(p)
        if on_timeout is not None:
            on_timeout()
        _finish(p, 5)
        raise


def set_child_subreaper() -> bool:
    """prctl(PR_SET_CHILD_SUBREAPER): a container whose runtime we had to
    kill becomes our child, so we can reap it instead of leaving a zombie."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_zombies() -> None:
    """Reap exited orphans.  Only called while no Popen is outstanding."""
    for _ in range(3):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        time.sleep(0.05)


def reap_orphans(keep: set) -> list:
    """Reap our exited children other than those in keep (the Popen children
    a wait is for): orphans reparented to us, the child subreaper, e.g. a
    runsc gofer whose sandbox has exited.  `runsc delete` polls until that
    gofer is gone, and a zombie is not gone; the runtimes' callers (the
    containerd shims) reap their orphans at once too."""
    reaped = []
    for t in glob.glob("/proc/self/task/*/children"):
        try:
            with open(t) as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            if pid in keep:
                continue
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
            except ChildProcessError:
                pass
    return reaped


def wait_reaping(p: subprocess.Popen, timeout: float, tick: float = 0.002,
                 keep: frozenset = frozenset()) -> int:
    """p.wait(timeout) that reaps other exited children (reap_orphans) every
    tick meanwhile, except those in keep; p's own exit is seen at once
    through a pidfd."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(p.pid)
    except (AttributeError, OSError):
        fd = None
    try:
        while p.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(p.args, timeout)
            if fd is not None:
                select.select([fd], [], [], min(tick, left))
            else:
                time.sleep(min(tick, left))
            reap_orphans({p.pid, *keep})
        return p.returncode
    finally:
        if fd is not None:
            os.close(fd)


def leftover_processes(tmp: Path) -> list:
    """Processes that are ours to end: those whose command line names our
    temp dir (runsc's sandbox and gofer carry --root=TMP/...), and our own
    children (every Popen has been waited for when this runs, so a child is
    a container process orphaned onto us, the child subreaper)."""
    me = os.getpid()
    needle = str(tmp).encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        state, ppid = fields[0], int(fields[1])
        if state == b"Z":
            continue               # reaped below (if ours) or by its parent
        if needle in cmdline or ppid == me:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
            out.append((int(entry), shown or stat[:60].decode(errors="replace")))
    return out


def read_proc(pid: int) -> dict | None:
    """ppid, state, comm and argv of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/comm", "rb") as f:
            comm = f.read().decode(errors="replace").strip()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    argv = [a.decode(errors="replace") for a in cmdline.split(b"\0")[:-1]] \
        if cmdline else []
    return {"ppid": int(fields[1]), "state": fields[0].decode(), "comm": comm,
            "argv": argv}


def scan_procs() -> dict:
    """pid -> read_proc(pid) for every live process (zombies left out)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None and info["state"] != "Z":
                out[int(entry)] = info
    return out


def descendants(procs: dict, roots: set) -> set:
    """Every process below the roots in the parent tree of procs."""
    children = {}
    for pid, info in procs.items():
        children.setdefault(info["ppid"], []).append(pid)
    seen, todo = set(), list(roots)
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in seen and c not in roots:
                seen.add(c)
                todo.append(c)
    return seen


def smaps_rollup(pid: int) -> dict | None:
    """Rss and Pss (KiB) of a process from /proc/PID/smaps_rollup."""
    vals = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    vals[key.lower() + "_kib"] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return vals if len(vals) == 2 else None


def process_memory(found) -> list:
    """Rss and Pss of each (pid, role, info) of `found`, once per pid, in
    order; processes gone meanwhile (or kernel threads) are left out."""
    procs = {}
    for p, role, info in found:
        mem = None if p in procs else smaps_rollup(p)
        if mem is not None:
            procs[p] = {"pid": p, "ppid": info["ppid"], "role": role, "comm": info["comm"],
                        "cmdline": " ".join(info["argv"])[:300], **mem}
    return list(procs.values())


def memory_result(out: dict, procs: list) -> dict:
    """`out` with the processes and their sums, status ok."""
    out.update(status="ok", processes=procs,
               rss_kib=sum(p["rss_kib"] for p in procs),
               pss_kib=sum(p["pss_kib"] for p in procs))
    return out


def sandbox_processes(rt: Runtime, init_pid: int, cid: str, bundle: Path,
                      state_dir: Path) -> list:
    """The host processes of one container of rt, as (pid, role, info):
    runc: the init alone.  runsc: its runsc-sandbox and runsc-gofer processes
    (argv[0]) naming the container id or bundle, and their descendants (the
    ptrace stubs).  cordon: the sentry (init_pid, from `state`), the
    processes of the cordon binary naming the bundle, its rootfs or the state
    dir (the gofers), and all their descendants (the stubs, children of the
    sentry named `cordon` with an empty command line)."""
    procs = scan_procs()
    if init_pid not in procs:
        return []
    if rt.name == "runc":
        return [(init_pid, "init", procs[init_pid])]
    marks = (str(bundle), str(state_dir))

    def names_us(argv):
        return any(a == cid or any(m in a for m in marks) for a in argv[1:])
    roots = {init_pid}
    if rt.name == "runsc":
        roots |= {p for p, i in procs.items() if i["argv"] and names_us(i["argv"])
                  and os.path.basename(i["argv"][0]) in ("runsc-sandbox", "runsc-gofer")}
    else:
        binary = os.path.realpath(rt.binary)

        def ours(pid, argv):
            if os.path.basename(argv[0]) == os.path.basename(binary):
                return True
            try:
                return os.path.realpath(f"/proc/{pid}/exe") == binary
            except OSError:
                return False
        roots |= {p for p, i in procs.items()
                  if i["argv"] and names_us(i["argv"]) and ours(p, i["argv"])}
    below_init = descendants(procs, {init_pid})
    rank = {"init": 0, "sentry": 0, "sandbox": 0, "gofer": 1, "stub": 2, "child": 3}
    out = []
    for pid in sorted(roots | descendants(procs, roots)):
        info = procs[pid]
        argv = info["argv"]
        if pid == init_pid:
            role = "sandbox" if rt.name == "runsc" else "sentry"
        elif argv and os.path.basename(argv[0]) == "runsc-sandbox":
            role = "sandbox"
        elif argv and (os.path.basename(argv[0]) == "runsc-gofer" or
                       (len(argv) > 1 and argv[1] == "gofer")):
            role = "gofer"
        elif pid in below_init and not argv:
            role = "stub"
        else:
            role = "child"
        out.append((pid, role, info))
    return sorted(out, key=lambda t: (rank[t[1]], t[0]))


class InitWaiter:
    """Waits for a container's init (the pid of --pid-file) to exit.  Opened
    between `create` and `start`: a pidfd, readable once the process has
    exited, then waitpid() if it is our child (the harness is a child
    subreaper, so an init whose `create` has exited is normally ours) to reap
    it.  Without pidfds: waitpid() polled for a child, else /proc/PID polled
    until it is gone or a zombie."""

    def __init__(self, pid: int):
        self.pid = pid
        info = read_proc(pid)
        self.child = info is not None and info["ppid"] == os.getpid()
        self.fd = None
        try:
            self.fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pass

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def wait(self, timeout: float) -> str | None:
        """How the exit was seen, or None if the init still runs after timeout."""
        deadline = time.monotonic() + timeout
        if self.fd is not None:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)
            if not poller.poll(max(0.0, timeout) * 1e3):
                return None
            how = "pidfd"
            if self.child:
                try:
                    os.waitpid(self.pid, 0)
                    how += "+waitpid"
                except ChildProcessError:
                    pass
            return how
        while time.monotonic() < deadline:
            if self.child:
                try:
                    if os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                        return "waitpid"
                except ChildProcessError:
                    return "waitpid"
            else:
                info = read_proc(self.pid)
                if info is None or info["state"] == "Z":
                    return "proc-poll"
            time.sleep(0.0005)
        return None


def parse_micro(b: Bench, stdout: str):
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == b.report_name:
            try:
                return float(parts[1])
            except ValueError:
                return None
    return None


class Harness:
    def __init__(self, tmp: Path, timeout: float):
        self.tmp = tmp
        self.timeout = timeout
        self.counter = 0

    def state_dir(self, rt: Runtime) -> Path:
        d = self.tmp / "state" / rt.name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def run(self, rt: Runtime, b: Bench, bundle: Path, iters: int,
            native_bin: Path, rootfs: Path) -> RunResult:
        chroot = env = None
        if rt.native and b.rootfs:
            # A system rootfs: in a chroot of it, as the container sees it.
            cmd = [b.program, *bench_args(b, iters)]
            cwd, chroot, cid = None, str(rootfs), None
            env = dict(kv.split("=", 1) for kv in CONTAINER_ENV)
        elif rt.native:
            cmd = [str(native_bin), *bench_args(b, iters, relative=True,
                                                scratch=scratch_dir(self.tmp, b))]
            cwd = str(rootfs)
            cid = None
        else:
            self.counter += 1
            cid = f"cbench-{os.getpid()}-{self.counter}"
            cmd = [*rt.base(self.state_dir(rt)), "run", "--bundle", str(bundle), cid]
            cwd = str(bundle)
        if b.uses("scratch"):
            # Every run starts from an empty directory (untimed).
            d = scratch_dir(self.tmp, b)
            d.mkdir(parents=True, exist_ok=True)
            clear_dir(d)
        timeout_cleanup = []
        on_timeout = (lambda: timeout_cleanup.append(self.delete(rt, cid))) if cid else None
        try:
            rc, wall_ms, out, err = spawn_timed(cmd, cwd, self.timeout, on_timeout,
                                                chroot, env)
        except (OSError, subprocess.SubprocessError) as e:
            return RunResult(False, error=f"exec failed: {e}")
        stdout = out.decode(errors="replace")
        stderr = err.decode(errors="replace")
        res = RunResult(False, wall_ms=wall_ms, rc=rc, stdout=tail(stdout),
                        stderr=tail(stderr))
        if rc is None:
            res.error = f"timeout after {self.timeout:g}s"
            res.cleanup = "; ".join(timeout_cleanup)
        elif rc != 0:
            res.error = f"exit status {rc}"
        elif b.kind == "micro":
            v = parse_micro(b, stdout)
            if v is None:
                res.error = f"no '{b.report_name} <ns_per_op>' line in output"
            else:
                res.ok, res.value = True, v
        elif b.expect and stdout.strip() != b.expect:
            res.error = f"expected stdout {b.expect!r}, got {stdout.strip()[:80]!r}"
        else:
            res.ok, res.value = True, wall_ms
        if cid is not None:
            if not res.ok:
                res.cleanup = "; ".join(filter(None, [res.cleanup, self.delete(rt, cid)]))
            # A runtime that leaves a process, mount or cgroup behind even
            # after a successful run is a bug worth seeing: record it.
            res.leftovers = self.reap_leftovers(quiet=True)
            if res.leftovers:
                log(f"bench: {rt.label} left behind (cleaned): {'; '.join(res.leftovers)}")
        return res

    def delete(self, rt: Runtime, cid: str, reap: bool = False) -> str:
        """`delete --force` (runc and runsc both spell it so; runsc has no -f).
        Returns a one-line account for the JSON.  reap: through oci(), reaping
        orphans meanwhile (runsc waits for its killed sandbox to be gone);
        only when no other Popen is outstanding."""
        if reap:
            try:
                rc, err = self.oci(rt, cid, ["delete", "--force", cid], timeout=DELETE_TIMEOUT)
            except OSError as e:
                return f"delete: {e}"
            last = " | ".join(err.strip().splitlines()[-2:])
            return f"delete --force: {'timeout' if rc is None else f'exit {rc}'}" + \
                (f": {last[-300:]}" if last else "")
        try:
            rc, _, _, err = spawn_timed(
                [*rt.base(self.state_dir(rt)), "delete", "--force", cid],
                None, DELETE_TIMEOUT)
        except OSError as e:
            return f"delete: {e}"
        last = " | ".join(err.decode(errors="replace").strip().splitlines()[-2:])
        return f"delete --force: {'timeout' if rc is None else f'exit {rc}'}" + \
            (f": {last[-300:]}" if last else "")

    def new_cid(self) -> str:
        self.counter += 1
        return f"cbench-{os.getpid()}-{self.counter}"

    def oci(self, rt: Runtime, cid: str, args: list, cwd: str | None = None,
            timeout: float | None = None, keep: frozenset = frozenset()):
        """One runtime command with its stdout and stderr on files
        (TMP/logs/ID.SUBCOMMAND.{out,err}): a created container's init
        inherits them, and pipes would hold communicate() until it exits.
        Orphans that exit meanwhile are reaped (wait_reaping), except the
        pids in keep.  Returns (rc, None on timeout, and the tail of its
        stderr)."""
        logs = self.tmp / "logs"
        logs.mkdir(exist_ok=True)
        base = logs / (f"{cid}.{args[0]}" + ("-force" if "--force" in args else ""))
        cmd = [*rt.base(self.state_dir(rt)), *args]
        timeout = self.timeout if timeout is None else timeout
        with open(f"{base}.out", "wb") as fo, open(f"{base}.err", "wb") as fe:
            p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fo,
                                 stderr=fe, start_new_session=True)
            try:
                rc = wait_reaping(p, timeout, keep=keep)
            except subprocess.TimeoutExpired:
                _killpg(p)
                p.wait()
                rc = None
            except BaseException:
                _killpg(p)
                p.wait()
                raise
        try:
            err = Path(f"{base}.err").read_bytes().decode(errors="replace")
        except OSError:
            err = ""
        return rc, tail(err)

    def lifecycle(self, rt: Runtime, bundle: Path) -> RunResult:
        """create_start_delete: `create --pid-file` + `start` + the init's exit
        + `delete`, timed as a whole (wall ms)."""
        cid = self.new_cid()
        pidfile = self.tmp / "logs" / f"{cid}.pid"
        res = RunResult(False)
        waiter = None
        t0 = time.perf_counter()
        try:
            for step, args in (("create", ["create", "--bundle", str(bundle),
                                           "--pid-file", str(pidfile), cid]),
                               ("start", ["start", cid]),
                               ("delete", ["delete", cid])):
                if step == "delete":
                    how = waiter.wait(self.timeout)
                    if how is None:
                        res.rc = None
                        res.error = f"init (pid {waiter.pid}) still running " \
                                    f"{self.timeout:g}s after start"
                        break
                    res.note = f"init pid {waiter.pid}: exit seen by {how}" + \
                        ("" if waiter.child else " (not our child)")
                # The init is left to the waiter, which reaps it itself.
                rc, err = self.oci(rt, cid, args, cwd=str(bundle),
                                   keep=frozenset({waiter.pid}) if waiter else frozenset())
                res.rc, res.stderr = rc, err
                if rc != 0:
                    res.error = f"{step}: " + (f"timeout after {self.timeout:g}s"
                                               if rc is None else f"exit status {rc}")
                    break
                if step == "create":
                    try:
                        waiter = InitWaiter(int(pidfile.read_text().strip()))
                    except (OSError, ValueError) as e:
                        res.error = f"create: no pid in --pid-file: {e}"
                        break
            else:
                res.ok = True
                res.value = res.wall_ms = (time.perf_counter() - t0) * 1e3
        except OSError as e:
            res.error = f"exec failed: {e}"
        finally:
            if waiter is not None:
                waiter.close()
            if not res.ok:
                res.cleanup = self.delete(rt, cid, reap=True)
            res.leftovers = self.reap_leftovers(quiet=True)
            if res.leftovers:
                log(f"bench: {rt.label} left behind (cleaned): {'; '.join(res.leftovers)}")
        return res

    def state_pid(self, rt: Runtime, cid: str):
        """The pid of `RUNTIME state ID` (JSON), or None, and an error."""
        try:
            rc, _, out, err = spawn_timed([*rt.base(self.state_dir(rt)), "state", cid],
                                          None, 30)
        except OSError as e:
            return None, f"state: {e}"
        try:
            return int(json.loads(out)["pid"]), ""
        except (ValueError, KeyError, TypeError) as e:
            return None, f"state: exit {rc}: {e}: " \
                f"{err.decode(errors='replace').strip()[-200:]}"

    def idle_memory(self, rt: Runtime, bundle: Path, settle: float) -> dict:
        """Start one container whose init sleeps forever, wait `settle`
        seconds, sum Rss and Pss over its host processes, delete --force it."""
        cid = self.new_cid()
        pidfile = self.tmp / "logs" / f"{cid}.pid"
        out = {"runtime": rt.name, "label": rt.label, "id": cid, "status": "fail",
               "error": ""}
        try:
            for step, args in (("create", ["create", "--bundle", str(bundle),
                                           "--pid-file", str(pidfile), cid]),
                               ("start", ["start", cid])):
                rc, err = self.oci(rt, cid, args, cwd=str(bundle))
                if rc != 0:
                    out["error"] = f"{step}: " + (f"timeout after {self.timeout:g}s"
                                                  if rc is None else f"exit status {rc}")
                    out["stderr"] = err
                    return out
            time.sleep(settle)
            try:
                out["pid_file"] = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                out["pid_file"] = None
            pid, err = self.state_pid(rt, cid)
            out["state_pid"] = pid
            if not pid:
                pid = out["pid_file"]
            if not pid:
                out["error"] = f"no pid from state ({err}) nor the pid file"
                return out
            procs = process_memory(sandbox_processes(rt, pid, cid, bundle, self.state_dir(rt)))
            if not procs:
                out["error"] = f"no process found for pid {pid}"
                return out
            return memory_result(out, procs)
        except OSError as e:
            out["error"] = f"exec failed: {e}"
            return out
        finally:
            out["cleanup"] = self.delete(rt, cid, reap=True)
            out["leftovers"] = self.reap_leftovers(quiet=True)
            if out["leftovers"]:
                log(f"bench: {rt.label} left behind (cleaned): {'; '.join(out['leftovers'])}")

    def pod_idle_memory(self, rt: Runtime, bundle: Path, settle: float) -> dict:
        """Start a pod of three idle containers (the sandbox container, then two
        containers annotated with its id, each with a bundle of its own on
        `bundle`'s rootfs), wait `settle` seconds, sum Rss and Pss over the
        union of their host processes, delete --force them (last first)."""
        pod = self.new_cid()
        cids = [pod, self.new_cid(), self.new_cid()]
        out = {"runtime": rt.name, "label": rt.label, "id": pod, "status": "fail", "error": ""}
        base = json.loads((bundle / "config.json").read_text())
        root = (bundle / base["root"]["path"]).resolve()
        started = []
        try:
            pids = {}
            for i, cid in enumerate(cids):
                d = self.tmp / "pods" / cid
                d.mkdir(parents=True, exist_ok=True)
                config = json.loads(json.dumps(base))
                config["root"]["path"] = str(root)
                config["annotations"] = {
                    "io.kubernetes.cri.container-type": "sandbox" if i == 0 else "container",
                    "io.kubernetes.cri.sandbox-id": pod}
                (d / "config.json").write_text(json.dumps(config))
                pidfile = self.tmp / "logs" / f"{cid}.pid"
                for step, args in (("create", ["create", "--bundle", str(d), "--pid-file", str(pidfile), cid]),
                                   ("start", ["start", cid])):
                    rc, err = self.oci(rt, cid, args, cwd=str(d))
                    if step == "create" and rc == 0:
                        started.append(cid)
                    if rc != 0:
                        out["error"] = f"{cid} {step}: " + (f"timeout after {self.timeout:g}s"
                                                             if rc is None else f"exit status {rc}")
                        out["stderr"] = err
                        return out
                pids[cid] = (pidfile, d)
            time.sleep(settle)
            found = []
            for cid, (pidfile, d) in pids.items():
                pid, _ = self.state_pid(rt, cid)
                if not pid:
                    try:
                        pid = int(pidfile.read_text().strip())
                    except (OSError, ValueError):
                        pid = None
                if not pid:
                    out["error"] = f"no pid for {cid}"
                    return out
                # (The gofers serve `bundle`'s rootfs: its path finds them.)
                for d_or_bundle in (d, bundle):
                    for p, role, info in sandbox_processes(rt, pid, cid, d_or_bundle, self.state_dir(rt)):
                        argv = info["argv"]
                        if rt.name == "cordon" and len(argv) > 1 and argv[1] == "exec-wait":
                            role = "stand-in"
                        elif rt.name == "runc":
                            role = "init"
                        found.append((p, role, info))
            procs = process_memory(found)
            if not procs:
                out["error"] = "no process found"
                return out
            return memory_result(out, procs)
        except OSError as e:
            out["error"] = f"exec failed: {e}"
            return out
        finally:
            out["cleanup"] = "; ".join(self.delete(rt, cid, reap=True) for cid in reversed(started))
            out["leftovers"] = self.reap_leftovers(quiet=True)
            if out["leftovers"]:
                log(f"bench: {rt.label} left behind (cleaned): {'; '.join(out['leftovers'])}")

    def mounts_under_tmp(self) -> list:
        try:
            with open("/proc/mounts") as f:
                mounts = [line.split()[1] for line in f]
        except OSError:
            return []
        root = str(self.tmp)
        return [m for m in mounts if m == root or m.startswith(root + "/")]

    def reap_leftovers(self, quiet: bool = False) -> list:
        """Kill processes whose command line names our temp dir (runsc's
        sandbox and gofer carry --root=TMP/...), lazily unmount anything
        mounted under it.  Returns a list of what was found."""
        found = []
        victims = leftover_processes(self.tmp)
        if victims:
            time.sleep(0.5)        # a runtime's helpers may still be exiting
            victims = leftover_processes(self.tmp)
        for pid, shown in victims:
            found.append(f"pid {pid}: {shown}")
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for m in sorted(self.mounts_under_tmp(), key=len, reverse=True):
            found.append(f"mount {m}")
            subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        # Containers orphaned by a killed `run` were reparented to us (we are
        # a child subreaper): reap them, or their cgroups cannot be removed.
        reap_zombies()
        # runc names a container's cgroups after its id; one whose init was
        # still a zombie when `delete --force` ran keeps empty cgroup dirs.
        prefix = f"cbench-{os.getpid()}-"
        for base in ("/sys/fs/cgroup", *glob.glob("/sys/fs/cgroup/*/")):
            try:
                names = os.listdir(base)
            except OSError:
                continue
            for n in names:
                d = os.path.join(base, n)
                if n.startswith(prefix) and os.path.isdir(d):
                    try:
                        os.rmdir(d)
                        found.append(f"cgroup {d}")
                    except OSError as e:
                        found.append(f"cgroup {d} (not removed: {e.strerror})")
        if found and not quiet:
            log("bench: cleaned up leftovers:\n  " + "\n  ".join(found))
        return found

    def final_cleanup(self, runtimes: list) -> list:
        """delete --force whatever a runtime still lists, then reap."""
        for rt in runtimes:
            if rt.native or not rt.available:
                continue
            sd = self.tmp / "state" / rt.name
            if not sd.is_dir():
                continue
            # runc keeps <root>/<id>/, runsc <root>/<sandbox>_sandbox:<id>.state
            ids = set()
            for n in os.listdir(sd):
                ids.update(re.findall(r"cbench-\d+-\d+", n))
            for cid in sorted(ids):
                self.delete(rt, cid)
        time.sleep(0.2)
        return self.reap_leftovers()


def ctrd_binary(rt: Runtime, wrap_dir: Path) -> str:
    """What the runc shim gets as --runc-binary for rt: its absolute path or,
    when rt has global flags (runsc: --platform=ptrace --network=none), a
    /bin/sh wrapper that execs it with them ahead of the shim's arguments
    (`--root R --log L --log-format json create ...`)."""
    if not rt.flags:
        return rt.binary
    wrap_dir.mkdir(parents=True, exist_ok=True)
    w = wrap_dir / rt.name
    w.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(x) for x in (rt.binary, *rt.flags))
                 + ' "$@"\n')
    w.chmod(0o755)
    return str(w)


class Containerd:
    """The private containerd of ctr_run_rm, driven through
    tests/containerd/containerd-harness.sh: CTRD_DIR is a fresh short
    directory /tmp/cb-ctrd-PID-XXXX (containerd's unix socket path must stay
    under 108 bytes), the ctr namespace is cbenchPID, CTRD_NO_APT=1 (never
    install anything), and TMPDIR is CTRD_DIR, so the harness's memory of its
    last dir ($TMPDIR/containerd-harness.last) and containerd's temporary
    mounts stay inside it rather than in the shared /tmp."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.dir: Path | None = None
        self.ns = f"cbench{os.getpid()}"
        self.pid: int | None = None
        self.stopped = False
        self.interrupted = False   # a SIGINT/SIGTERM arrived during stop()
        self.record = {"harness": str(CTRD_HARNESS), "namespace": self.ns}

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("CTRD_KEEP", None)
        env.update(CTRD_DIR=str(self.dir), CTRD_NS=self.ns, CTRD_NO_APT="1",
                   TMPDIR=str(self.dir), CTRD_RUN_TIMEOUT=str(max(1, int(self.timeout))))
        return env

    def cmd(self, *args) -> list:
        return ["bash", str(CTRD_HARNESS), *args]

    def start(self) -> str:
        """Start containerd and import the busybox image: '' or why not."""
        if not CTRD_HARNESS.is_file():
            return f"{CTRD_HARNESS} not found"
        self.dir = Path(tempfile.mkdtemp(prefix=f"cb-ctrd-{os.getpid()}-", dir="/tmp"))
        self.record["dir"] = str(self.dir)
        try:
            rc, ms, _, err = spawn_timed(self.cmd("start"), None, CTRD_START_TIMEOUT,
                                         env=self.env())
        except OSError as e:
            return f"containerd-harness.sh start: {e}"
        errs = err.decode(errors="replace")
        self.record["start"] = {"rc": rc, "ms": ms, "stderr": tail(errs)}
        try:
            self.pid = int((self.dir / "containerd.pid").read_text().strip())
        except (OSError, ValueError):
            pass
        if rc != 0:
            last = " | ".join(errs.strip().splitlines()[-3:])[-400:]
            return "containerd-harness.sh start: " + \
                ("timeout" if rc is None else f"exit status {rc}") + f": {last}"
        return ""

    def bench(self, ctype: str, binary: str | None) -> RunResult:
        """`containerd-harness.sh bench 1 TYPE [BINARY]`: one untimed warm-up
        `ctr run --rm ... echo hello`, then one timed by the script (ms)."""
        args = ["bench", "1", ctype] + ([binary] if binary else [])
        try:
            rc, ms, out, err = spawn_timed(self.cmd(*args), None, 2 * self.timeout + 60,
                                           env=self.env())
        except OSError as e:
            return RunResult(False, error=f"exec failed: {e}")
        finally:
            # Shims that exited were reparented to us (the child subreaper).
            reap_zombies()
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        res = RunResult(False, wall_ms=ms, rc=rc, stdout=tail(stdout), stderr=tail(stderr))
        m = re.search(r"ms: (\d+)\s+median: (\d+)", stdout)
        if rc is None:
            res.error = f"timeout after {2 * self.timeout + 60:g}s"
        elif rc != 0:
            res.error = f"exit status {rc}"
        elif not m:
            res.error = "no 'median: N' in the output of containerd-harness.sh bench"
        else:
            res.ok, res.value = True, float(m.group(2))
        return res

    def stop(self) -> None:
        """`containerd-harness.sh stop` (kills what runs in our namespace,
        containerd, stray shims and runtime processes; unmounts and removes
        CTRD_DIR), then a check of our own; idempotent, not interruptible."""
        if self.dir is None or self.stopped:
            return
        self.stopped = True

        def note(signum, frame):
            self.interrupted = True
        old = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with tempfile.TemporaryFile() as f:
                t0 = time.perf_counter()
                p = subprocess.Popen(self.cmd("stop"), env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=f, stderr=f, start_new_session=True)
                deadline = time.monotonic() + CTRD_STOP_TIMEOUT
                while p.poll() is None:
                    # containerd became our child when `start`'s shell exited:
                    # reap it at once, or `stop` waits on its zombie (kill -0).
                    if self.pid:
                        try:
                            os.waitpid(self.pid, os.WNOHANG)
                        except ChildProcessError:
                            pass
                    if time.monotonic() > deadline:
                        _killpg(p)
                        p.wait()
                        break
                    time.sleep(0.05)
                f.seek(0)
                text = f.read().decode(errors="replace")
            self.record["stop"] = {"rc": p.returncode, "ms": (time.perf_counter() - t0) * 1e3,
                                   "output": tail(text)}
            if p.returncode != 0:
                log(f"bench: containerd-harness.sh stop: exit status {p.returncode}: "
                    f"{' | '.join(text.strip().splitlines()[-3:])[-300:]}")
            reap_zombies()
            self.record["leftovers"], self.record["cgroups_removed"] = self.leftovers()
            if self.record["leftovers"]:
                log("bench: containerd left behind (cleaned):\n  "
                    + "\n  ".join(self.record["leftovers"]))
        except OSError as e:
            self.record["stop"] = {"error": str(e)}
            log(f"bench: containerd-harness.sh stop failed: {e}")
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def leftovers(self):
        """After `stop`: kill processes naming CTRD_DIR, unmount what is
        mounted below it, remove it, and remove the namespace's cgroup
        directories (ctr puts containers in /NS/ID; the NS level stays behind
        by design, a container level would be a leak).  Returns (leaks,
        cgroup dirs removed)."""
        found, removed = [], []
        d = str(self.dir)
        me = os.getpid()
        for _ in range(2):
            victims = []
            for pid, info in scan_procs().items():
                if pid != me and any(d in a for a in info["argv"]):
                    victims.append(pid)
                    found.append(f"pid {pid}: {' '.join(info['argv'])[:200]}")
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            if not victims:
                break
            time.sleep(0.5)
            reap_zombies()
        try:
            with open("/proc/mounts") as f:
                mounts = [line.split()[1] for line in f]
        except OSError:
            mounts = []
        mounts = [m for m in mounts if m == d or m.startswith(d + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            found.append(f"mount {m}")
            subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if os.path.lexists(d):
            found.append(f"dir {d}")
            if not mounts:
                shutil.rmtree(d, ignore_errors=True)
        for base in ("/sys/fs/cgroup", *glob.glob("/sys/fs/cgroup/*/")):
            top = os.path.join(base, self.ns)
            if not os.path.isdir(top):
                continue
            for root, dirs, _ in os.walk(top, topdown=False):
                for sub in dirs:
                    found.append(f"cgroup {os.path.join(root, sub)}")
                    try:
                        os.rmdir(os.path.join(root, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(top)
                removed.append(top)
            except OSError as e:
                found.append(f"cgroup {top} (not removed: {e.strerror})")
        return found, removed


# --------------------------------------------------------------------------
# Summary and table.
# --------------------------------------------------------------------------

def summarize(values: list, failed: int, skipped: int, rt: Runtime) -> dict:
    s = {"n": len(values), "failed": failed, "skipped": skipped}
    if not rt.available:
        s["status"] = "n/a"
    elif not values:
        s["status"] = "fail"
    else:
        s.update(status="ok", median=statistics.median(values),
                 min=min(values), max=max(values))
    return s


def fmt_num(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_cell(s: dict | None) -> str:
    if s is None:
        return "-"
    if s["status"] != "ok":
        return s["status"]
    cell = f"{fmt_num(s['median'])} ({fmt_num(s['min'])}-{fmt_num(s['max'])})"
    if s["failed"]:
        cell += f" [{s['failed']} failed]"
    if s.get("leaked"):
        cell += f" [{s['leaked']} leaked]"
    return cell


def fmt_ratio(a: dict | None, b: dict | None) -> str:
    if a is None or b is None:
        return "-"
    if a["status"] != "ok" or b["status"] != "ok":
        return "n/a"
    if b["median"] <= 0:
        return "n/a"
    return f"{a['median'] / b['median']:.2f}x"


def markdown_table(benches: list, runtimes: dict, summary: dict) -> str:
    head = ["benchmark", "unit"] + [runtimes[n].label for n in COLUMN_ORDER] \
        + ["cordon/native", "cordon/runsc"]
    rows = [head, ["---"] * 2 + ["---:"] * (len(head) - 2)]
    for b in benches:
        s = summary[b.name]
        row = [b.name, b.unit] + [fmt_cell(s.get(n)) for n in COLUMN_ORDER]
        row += [fmt_ratio(s.get("cordon"), s.get("native")),
                fmt_ratio(s.get("cordon"), s.get("runsc"))]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def not_applicable() -> dict:
    """A summary cell for a runtime a row has no meaning for (native)."""
    return {"n": 0, "failed": 0, "skipped": 0, "status": "n/a", "why": "not applicable"}


def lifecycle_table(names: list, runtimes: dict, summary: dict) -> str:
    """run_echo, create_start_delete, ctr_run_rm(_shim): wall ms, with
    Cordon's ratios to runc and runsc.  ctr_run_rm_shim's runc and runsc
    cells are ctr_run_rm's (the same runs), its cordon cell is the shim's."""
    head = ["benchmark", "unit"] + [runtimes[n].label for n in COLUMN_ORDER] \
        + ["cordon/runc", "cordon/runsc"]
    rows = [head, ["---"] * 2 + ["---:"] * (len(head) - 2)]
    for name in names:
        s = summary[name]
        if name == "ctr_run_rm_shim":
            s = {**summary.get("ctr_run_rm", {}), **s}
        row = [name, "ms"] + [fmt_cell(s.get(n)) for n in COLUMN_ORDER]
        row += [fmt_ratio(s.get("cordon"), s.get("runc")),
                fmt_ratio(s.get("cordon"), s.get("runsc"))]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def memory_table(runtimes: dict, mem: dict) -> str:
    """idle_memory: one row per runtime, then Cordon's ratios."""
    rows = [["runtime", "processes", "RSS MiB", "PSS MiB"], ["---", "---", "---:", "---:"]]
    for n in COLUMN_ORDER:
        m = mem.get(n)
        if m is None:
            continue
        if m["status"] != "ok":
            rows.append([runtimes[n].label, m["status"], "-", "-"])
            continue
        roles = {}
        for p in m["processes"]:
            roles[p["role"]] = roles.get(p["role"], 0) + 1
        desc = ", ".join(r if k == 1 else f"{k} {r}s" for r, k in roles.items())
        if m.get("leftovers"):
            desc += " [leaked]"
        rows.append([runtimes[n].label, f"{len(m['processes'])}: {desc}",
                     fmt_num(m["rss_kib"] / 1024), fmt_num(m["pss_kib"] / 1024)])
    c = mem.get("cordon")
    for base in ("runc", "runsc"):
        b = mem.get(base)
        if c is None or b is None:
            continue
        ok = c["status"] == "ok" and b["status"] == "ok"
        rows.append([f"cordon/{base}", "",
                     f"{c['rss_kib'] / b['rss_kib']:.2f}x" if ok and b["rss_kib"] else "n/a",
                     f"{c['pss_kib'] / b['pss_kib']:.2f}x" if ok and b["pss_kib"] else "n/a"])
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


# --------------------------------------------------------------------------

def parse_args(argv=None):
    names = [b.name for b in BENCHMARKS] + [e.name for e in EXTRAS]
    p = argparse.ArgumentParser(
        description="Run Cordon's benchmarks natively and under runc, runsc and cordon.",
        epilog="Rows beyond the main table: create_start_delete (create + start + "
               "init exit + delete), ctr_run_rm (`ctr run --rm` through a private "
               "containerd, tests/containerd/containerd-harness.sh; with it "
               "ctr_run_rm_shim, Cordon's shim io.containerd.cordon.v1) and "
               "idle_memory (RSS/PSS of an idle container, once, at the end). "
               "Groups for --only and --skip: micro (every ns/op row), wall ("
               + ",".join(GROUPS["wall"]) + "), lifecycle (create_start_delete), "
               "containerd (ctr_run_rm), memory (idle_memory). "
               "Environment: CORDON_BIN (default target/x86_64-unknown-linux-gnu/release/cordon), CORDON_FLAGS, "
               "RUNC_BIN, RUNC_FLAGS, RUNSC_BIN, RUNSC_FLAGS "
               "(default '--platform=ptrace --network=none'), CC (default gcc), "
               "CORDON_DEBIAN_ROOTFS (default: what tests/scripts/debian-rootfs.sh prints), "
               "CORDON_SHIM_BIN (default target/x86_64-unknown-linux-gnu/release/containerd-shim-cordon-v1).")
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    p.add_argument("--runtimes", default="native,runc,runsc,cordon",
                   help="comma-separated subset of native,runc,runsc,cordon")
    p.add_argument("--only", default="",
                   help="comma-separated rows and groups to run (default: all): "
                   + ",".join(names) + "; groups " + ",".join(GROUPS))
    p.add_argument("--skip", default="",
                   help="comma-separated rows and groups to leave out (as --only), "
                   "e.g. --skip containerd,memory")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply the micro iteration counts (default 1.0)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds per run before it is killed (default 120)")
    p.add_argument("--idle-settle", type=float, default=IDLE_SETTLE, metavar="S",
                   help="idle_memory: seconds between `start` and the measurement "
                   f"(default {IDLE_SETTLE:g})")
    p.add_argument("--json", metavar="PATH", help="write raw results as JSON here")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp dir (bundles, binaries) for inspection")
    p.add_argument("--list", action="store_true", help="list benchmarks and exit")
    a = p.parse_args(argv)
    if a.reps < 1:
        p.error("--reps must be >= 1")
    if a.scale <= 0:
        p.error("--scale must be > 0")
    if a.idle_settle < 0:
        p.error("--idle-settle must be >= 0")
    rts = []
    for r in (x.strip() for x in a.runtimes.split(",") if x.strip()):
        r = RUNTIME_ALIASES.get(r, r)
        if r not in COLUMN_ORDER:
            p.error(f"unknown runtime {r!r} (known: {', '.join(COLUMN_ORDER)})")
        if r not in rts:
            rts.append(r)
    if not rts:
        p.error("no runtime selected")
    a.runtimes = rts

    def expand(spec: str, opt: str) -> set:
        out = set()
        for w in (x.strip() for x in spec.split(",") if x.strip()):
            if w in GROUPS:
                out.update(GROUPS[w])
            elif w in names:
                out.add(w)
            else:
                p.error(f"{opt}: unknown benchmark or group {w!r} (known: "
                        f"{', '.join(names)}; groups: {', '.join(GROUPS)})")
        return out
    wanted = expand(a.only, "--only") if a.only else set(names)
    wanted -= expand(a.skip, "--skip")
    a.benches = [b for b in BENCHMARKS if b.name in wanted]
    a.extras = [e.name for e in EXTRAS if e.name in wanted]
    if not a.benches and not a.extras:
        p.error("no benchmark selected")
    return a


def log_run(rep: int, reps: int, name: str, unit: str, rt: Runtime, r: RunResult) -> None:
    errtail = " | ".join(r.stderr.strip().splitlines()[-3:])[-300:]
    val = f"{r.value:.1f} {unit}" if r.ok else f"FAIL ({r.error}) {errtail}"
    log(f"bench: rep {rep + 1}/{reps} {name:15} {rt.label:13} {val}")


def containerd_phase(a, selected: list, tmp: Path, ctrd: Containerd, runs: list) -> None:
    """ctr_run_rm (and ctr_run_rm_shim): start a private containerd, then per
    rep, runtimes in rotating order, one `containerd-harness.sh bench 1`;
    containerd is stopped at the end (and by main's finally on errors)."""
    rows = []                      # (row, runtime, containerd runtime type, binary)
    ctrd.record["runtimes"] = {}
    for rt in selected:
        if rt.native or not rt.available:
            continue               # summarized as n/a
        binary = ctrd_binary(rt, tmp / "ctrd-bin")
        rows.append(("ctr_run_rm", rt, CTRD_RUNC_TYPE, binary))
        ctrd.record["runtimes"][rt.name] = {"type": CTRD_RUNC_TYPE, "runc_binary": binary,
                                            "wraps": [rt.binary, *rt.flags]}
    cordon = next((rt for rt in selected if rt.name == "cordon"), None)
    if cordon is not None:
        shim = cordon_shim_bin()
        if shim.is_file() and os.access(shim, os.X_OK):
            ctrd.record["shim"] = {"status": "built", "binary": str(shim.resolve()),
                                   "type": CORDON_SHIM_TYPE}
            rows.append(("ctr_run_rm_shim", cordon, CORDON_SHIM_TYPE, str(shim.resolve())))
        else:
            ctrd.record["shim"] = {"status": "not built yet", "binary": str(shim),
                                   "type": CORDON_SHIM_TYPE}
            log(f"bench: ctr_run_rm_shim: {shim} not built yet")
    if not rows:
        return
    try:
        err = ctrd.start()
        if err:
            log(f"bench: containerd did not start: {err}")
        else:
            log(f"bench: containerd up, CTRD_DIR {ctrd.dir}, namespace {ctrd.ns}")
        timed_out = set()
        for rep in range(a.reps):
            order = rows[rep % len(rows):] + rows[:rep % len(rows)]
            for name, rt, ctype, binary in order:
                rec = {"rep": rep, "bench": name, "runtime": rt.name}
                if err:
                    rec.update(ok=False, error=f"containerd did not start: {err}")
                elif (name, rt.name) in timed_out:
                    rec.update(ok=False, skipped=True, error="skipped after timeout")
                else:
                    r = ctrd.bench(ctype, binary)
                    rec.update(dataclasses.asdict(r))
                    if r.rc is None:
                        timed_out.add((name, rt.name))
                    log_run(rep, a.reps, name, "ms", rt, r)
                runs.append(rec)
    finally:
        ctrd.stop()


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.list:
        for b in BENCHMARKS:
            print(f"{b.name:19} {b.kind:10} {b.unit:6} {b.about}")
        for e in EXTRAS:
            print(f"{e.name:19} {e.kind:10} {e.unit:6} {e.about}")
        for g, m in GROUPS.items():
            print(f"group {g}: {','.join(m)}")
        return 0
    if any(r != "native" for r in a.runtimes) and os.geteuid() != 0:
        log("bench: container runtimes need root (use --runtimes native otherwise)")
        return 2
    cc = os.environ.get("CC", "gcc")
    if not shutil.which(cc):
        log(f"bench: C compiler {cc!r} not found")
        return 2

    if os.geteuid() == 0:
        set_child_subreaper()

    all_rts = make_runtimes()
    for name in a.runtimes:
        probe_runtime(all_rts[name])
        rt = all_rts[name]
        log(f"bench: {rt.label}: " + ((rt.version or "?") if rt.available
                                      else f"n/a ({rt.why_unavailable})"))
    selected = [all_rts[n] for n in a.runtimes]
    iters = {b.name: max(1, round(b.iters * a.scale)) for b in a.benches if b.kind == "micro"}

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    tmp = Path(tempfile.mkdtemp(prefix="cordon-bench-")).resolve()
    h = Harness(tmp, a.timeout)
    ctrd = Containerd(a.timeout)
    runs = []
    leftovers = []
    interrupted = False
    mem = {}                       # idle_memory: runtime -> Harness.idle_memory()
    pod_mem = {}                   # pod_idle_memory: runtime -> Harness.pod_idle_memory()
    system_roots = {}              # Bench.rootfs -> host path
    unrunnable = {}                # bench name -> why every run of it fails
    try:
        for name in sorted({b.rootfs for b in a.benches if b.rootfs}):
            try:
                system_roots[name] = SYSTEM_ROOTFS[name]()
                log(f"bench: {name} rootfs: {system_roots[name]}")
            except (OSError, RuntimeError) as e:
                log(f"bench: {name} rootfs unavailable: {e}")
                unrunnable.update({b.name: f"{name} rootfs unavailable: {e}"
                                   for b in a.benches if b.rootfs == name})
        for b in a.benches:
            root = system_roots.get(b.rootfs)
            if root is not None and not os.path.lexists(root / b.program.lstrip("/")):
                unrunnable[b.name] = f"{b.program} not in the {b.rootfs} rootfs {root}"
                log(f"bench: {b.name}: {unrunnable[b.name]}")
        runnable = [b for b in a.benches if b.name not in unrunnable]

        built = build_programs(tmp / "build", cc)
        master = tmp / "rootfs"
        assets = {k for k in ROOTFS_ASSETS if any(b.uses(k) for b in runnable)}
        build_rootfs(master, built, assets)
        if assets:
            # Write the 256 MiB (and 10k inodes) back now, untimed, rather
            # than while the file-system rows are timed.
            os.sync()
        bundles = build_bundles(tmp, master, runnable, iters, system_roots)
        roots = {b.name: system_roots[b.rootfs] if b.rootfs else master for b in runnable}
        native_bins = {b.name: master / b.program.lstrip("/") for b in runnable}

        timed_out = set()          # (runtime, bench) pairs not retried
        # Rows on a system rootfs: one untimed native run each, so the first
        # runtime timed does not pay for reading its files from disk.
        for b in runnable:
            if b.rootfs:
                r = h.run(all_rts["native"], b, bundles[b.name], iters.get(b.name, 0),
                          native_bins[b.name], roots[b.name])
                runs.append({"rep": -1, "bench": f"warmup:{b.name}", "runtime": "native",
                             **dataclasses.asdict(r)})
                if not r.ok:
                    log(f"bench: native warm-up of {b.name} failed: {r.error}: "
                        f"{r.stderr.strip()[-300:]}")
        # One untimed warm-up of every runtime (page cache, first-start costs).
        warm = Bench("warmup", "wall", "/bin/true", argv=())
        wb = build_bundles(tmp / "warm", master, [warm], {})["warmup"]
        # Bundles of create_start_delete and idle_memory (harness rootfs).
        xb = build_bundles(tmp / "extra", master, [
            Bench("create_start_delete", "wall", LIFECYCLE_INIT, argv=()),
            Bench("idle_memory", "wall", IDLE_INIT, argv=())], {})
        for rt in selected:
            if rt.available:
                r = h.run(rt, warm, wb, 0, master / "bin/true", master)
                runs.append({"rep": -1, "bench": "warmup", "runtime": rt.name,
                             **dataclasses.asdict(r)})
                if not r.ok:
                    log(f"bench: warm-up under {rt.label} failed: {r.error}: "
                        f"{r.stderr.strip()[-300:]}")
                if r.rc is None:
                    # `true` hangs: every benchmark would too; don't wait for each.
                    timed_out.update((rt.name, b.name) for b in a.benches)
                    timed_out.add((rt.name, "create_start_delete"))

        for rep in range(a.reps):
            for b in a.benches:
                # Rotate the order each rep so no runtime always goes first.
                order = selected[rep % len(selected):] + selected[:rep % len(selected)]
                for rt in order:
                    rec = {"rep": rep, "bench": b.name, "runtime": rt.name}
                    if not rt.available:
                        rec.update(ok=False, skipped=True, error="n/a")
                    elif b.name in unrunnable:
                        rec.update(ok=False, error=unrunnable[b.name])
                    elif (rt.name, b.name) in timed_out:
                        rec.update(ok=False, skipped=True, error="skipped after timeout")
                    else:
                        r = h.run(rt, b, bundles[b.name], iters.get(b.name, 0),
                                  native_bins[b.name], roots[b.name])
                        rec.update(dataclasses.asdict(r))
                        if r.rc is None and not r.ok:
                            timed_out.add((rt.name, b.name))
                        log_run(rep, a.reps, b.name, b.unit, rt, r)
                    runs.append(rec)
            if "create_start_delete" in a.extras:
                name = "create_start_delete"
                order = selected[rep % len(selected):] + selected[:rep % len(selected)]
                for rt in order:
                    if rt.native:
                        continue   # no such thing natively: summarized as n/a
                    rec = {"rep": rep, "bench": name, "runtime": rt.name}
                    if not rt.available:
                        rec.update(ok=False, skipped=True, error="n/a")
                    elif (rt.name, name) in timed_out:
                        rec.update(ok=False, skipped=True, error="skipped after timeout")
                    else:
                        r = h.lifecycle(rt, xb[name])
                        rec.update(dataclasses.asdict(r))
                        if r.rc is None and not r.ok:
                            timed_out.add((rt.name, name))
                        log_run(rep, a.reps, name, "ms", rt, r)
                    runs.append(rec)

        if "ctr_run_rm" in a.extras:
            containerd_phase(a, selected, tmp, ctrd, runs)
            if ctrd.interrupted:
                raise KeyboardInterrupt

        for name, measured, measure in (("idle_memory", mem, h.idle_memory),
                                        ("pod_idle_memory", pod_mem, h.pod_idle_memory)):
            if name not in a.extras:
                continue
            for rt in selected:
                if rt.native:
                    continue
                if not rt.available:
                    measured[rt.name] = {"runtime": rt.name, "label": rt.label, "status": "n/a",
                                         "error": rt.why_unavailable}
                    continue
                m = measure(rt, xb["idle_memory"], a.idle_settle)
                measured[rt.name] = m
                if m["status"] == "ok":
                    log(f"bench: {name} {rt.label:13} {len(m['processes'])} processes, "
                        f"RSS {m['rss_kib'] / 1024:.1f} MiB, PSS {m['pss_kib'] / 1024:.1f} MiB: "
                        + ", ".join(f"{p['role']} {p['pid']} {p['rss_kib']}/{p['pss_kib']} KiB"
                                    for p in m["processes"]))
                else:
                    errtail = " | ".join(m.get("stderr", "").strip().splitlines()[-3:])[-300:]
                    log(f"bench: {name} {rt.label:13} FAIL ({m['error']}) {errtail}")
    except KeyboardInterrupt:
        interrupted = True
        log("bench: interrupted, cleaning up")
    finally:
        try:
            ctrd.stop()
        except KeyboardInterrupt:
            interrupted = True
        if ctrd.interrupted:
            interrupted = True
        leftovers = h.final_cleanup(selected)
        still_mounted = h.mounts_under_tmp()
        if a.keep:
            log(f"bench: kept {tmp}")
        elif still_mounted:
            # Never rmtree through a mount point.
            log(f"bench: NOT removing {tmp}: still mounted: {', '.join(still_mounted)}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def summarize_row(name: str, row_runtimes: list) -> dict:
        out = {}
        for rt in row_runtimes:
            mine = [r for r in runs if r["bench"] == name and r["runtime"] == rt.name]
            vals = [r["value"] for r in mine if r.get("ok")]
            failed = sum(1 for r in mine if not r.get("ok") and not r.get("skipped"))
            skipped = sum(1 for r in mine if r.get("skipped") and rt.available)
            out[rt.name] = summarize(vals, failed + skipped, skipped, rt)
            out[rt.name]["leaked"] = sum(1 for r in mine if r.get("leftovers"))
        return out

    summary = {}
    for b in a.benches:
        summary[b.name] = summarize_row(b.name, selected)
    containers = [rt for rt in selected if not rt.native]
    native_sel = any(rt.native for rt in selected)
    life_rows = [b.name for b in a.benches if b.name == "run_echo"]
    if "create_start_delete" in a.extras:
        summary["create_start_delete"] = summarize_row("create_start_delete", containers)
        life_rows.append("create_start_delete")
    if "ctr_run_rm" in a.extras:
        summary["ctr_run_rm"] = summarize_row("ctr_run_rm", containers)
        life_rows.append("ctr_run_rm")
        cordon = all_rts["cordon"]
        if cordon in selected:
            shim = ctrd.record.get("shim", {})
            if shim.get("status") == "not built yet":
                summary["ctr_run_rm_shim"] = {"cordon": {
                    "n": 0, "failed": 0, "skipped": 0, "status": "not built yet",
                    "why": f"{shim.get('binary')} does not exist"}}
            else:
                summary["ctr_run_rm_shim"] = summarize_row("ctr_run_rm_shim", [cordon])
            if native_sel:
                summary["ctr_run_rm_shim"]["native"] = not_applicable()
            life_rows.append("ctr_run_rm_shim")
    for name in ("create_start_delete", "ctr_run_rm"):
        if name in summary and native_sel:
            summary[name]["native"] = not_applicable()
    for name, measured in (("idle_memory", mem), ("pod_idle_memory", pod_mem)):
        if name not in a.extras:
            continue
        summary[name] = {
            n: {"status": m["status"], "error": m.get("error", ""),
                **({"processes": len(m["processes"]),
                    "rss_mib": round(m["rss_kib"] / 1024, 2),
                    "pss_mib": round(m["pss_kib"] / 1024, 2)} if m["status"] == "ok" else {}),
                "leaked": len(m.get("leftovers", []))}
            for n, m in measured.items()}

    stamp = (f"{os.cpu_count()} CPUs, kernel {platform.release()}, "
             f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}.")
    table = life_table = mem_table = ""
    if a.benches:
        table = markdown_table(a.benches, all_rts, summary)
        print(table)
        print()
        print(f"Median of {a.reps} reps (min-max in parentheses); micro rows in ns per "
              f"operation, wall rows ({', '.join(GROUPS['wall'])}) in ms of wall time for "
              f"the whole `run` (natively: of the program alone). "
              f"'-' = not run, 'n/a' = runtime not installed, 'fail' = every run failed, "
              f"'[N leaked]' = N runs left a process, mount or cgroup behind. " + stamp)
    if life_rows:
        life_table = lifecycle_table(life_rows, all_rts, summary)
        if table:
            print()
        print(life_table)
        print()
        notes = {
            "run_echo": "run_echo: the row of the table above.",
            "create_start_delete": "create_start_delete: `create --pid-file` + `start` + "
                                   "the exit of the init (/bin/true) + `delete`.",
            "ctr_run_rm": "ctr_run_rm: `ctr run --rm` of busybox `echo hello` through a "
                          "private containerd and its runc shim (runsc through a wrapper "
                          "adding its flags), as timed by containerd-harness.sh `bench`.",
            "ctr_run_rm_shim": f"ctr_run_rm_shim: Cordon's own shim ({CORDON_SHIM_TYPE}); "
                               "its runc and runsc cells are ctr_run_rm's.",
        }
        print(f"Start-up and container lifecycle in ms of wall time, median of {a.reps} "
              f"reps (min-max in parentheses). "
              + " ".join(notes[n] for n in life_rows)
              + (" 'n/a' in the native column: no such thing natively. "
                 if any(n != "run_echo" for n in life_rows) else " ")
              + ("" if table else stamp))
    if mem:
        mem_table = memory_table(all_rts, mem)
        if table or life_table:
            print()
        print(mem_table)
        print()
        print(f"idle_memory, measured once, {a.idle_settle:g} s after `start` of a "
              f"container whose init pause()s forever: Rss and Pss from "
              f"/proc/PID/smaps_rollup summed over the runtime's host processes of that "
              f"container (runc: its init alone; runsc: sandbox, gofer, stubs; cordon: "
              f"sentry, gofer, stubs); per-process figures in the JSON. "
              + ("" if table or life_table else stamp))
    pod_table = ""
    if pod_mem:
        pod_table = memory_table(all_rts, pod_mem)
        print()
        print(pod_table)
        print()
        print("pod_idle_memory, measured the same way over a pod of three such containers "
              "(the sandbox container and two annotated with its sandbox id, as CRI creates "
              "them): runc runs three containers, runsc and cordon one sandbox with a gofer "
              "per container (cordon: plus an exec-wait stand-in as each added container's "
              "pid-file process).")
    sys.stdout.flush()

    if a.json:
        doc = {
            "meta": {
                "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "host": platform.node(), "kernel": platform.release(),
                "cpus": os.cpu_count(), "reps": a.reps, "scale": a.scale,
                "timeout_s": a.timeout, "interrupted": interrupted,
                "leftovers_cleaned": leftovers,
                "runtimes": {rt.name: {"label": rt.label, "binary": rt.binary,
                                       "flags": list(rt.flags), "version": rt.version,
                                       "available": rt.available,
                                       "why_unavailable": rt.why_unavailable}
                             for rt in selected},
            },
            "benchmarks": [{"name": b.name, "kind": b.kind, "unit": b.unit,
                            "program": b.program,
                            "argv": [b.program, *bench_args(b, iters.get(b.name, 0))],
                            "rootfs": str(system_roots.get(b.rootfs, "")) if b.rootfs
                            else "", "about": b.about} for b in a.benches]
            + [{"name": e.name, "kind": e.kind, "unit": e.unit, "about": e.about,
                **({"program": LIFECYCLE_INIT} if e.kind == "lifecycle" else {}),
                **({"program": IDLE_INIT, "settle_s": a.idle_settle}
                   if e.kind == "memory" else {})}
               for e in EXTRAS if e.name in a.extras],
            "summary": summary,
            "runs": runs,
            "table_markdown": table,
        }
        if life_table:
            doc["lifecycle_table_markdown"] = life_table
        if "ctr_run_rm" in a.extras:
            doc["containerd"] = ctrd.record
        if "idle_memory" in a.extras:
            doc["idle_memory"] = mem
            doc["memory_table_markdown"] = mem_table
        if "pod_idle_memory" in a.extras:
            doc["pod_idle_memory"] = pod_mem
            doc["pod_memory_table_markdown"] = pod_table
        path = Path(a.json)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        log(f"bench: wrote {path}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
