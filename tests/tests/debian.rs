//! Real programs from a Debian bookworm rootfs (built once by
//! `tests/scripts/debian-rootfs.sh`, cached in /var/cache/cordon): bash,
//! coreutils, findutils, python3 and perl, each run inside `cordon run` and
//! under runc on the same bundle, stdout and status compared.
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use cordon_tests::{workspace_dir, Compare, Process, Sandbox};

fn debian_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            if let Some(dir) = std::env::var_os("CORDON_DEBIAN_ROOTFS") {
                return PathBuf::from(dir);
            }
            let script = workspace_dir().join("tests/scripts/debian-rootfs.sh");
            let out = Command::new(&script).output().unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "building the Debian rootfs failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

fn same(name: &str, args: &[&str], status: i32) {
    let mut sb = Sandbox::with_shared_rootfs(name, &debian_rootfs());
    let mut p = Process::new(args);
    p.env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        "HOME=/root".into(),
        "LANG=C.UTF-8".into(),
    ];
    sb.assert_same_as_runc(&p, &Compare::status(status));
}

#[test]
fn bash_loop_pipeline() {
    same("deb-bash-pipe", &["bash", "-c", "for i in $(seq 200); do echo $i; done | sort -rn | head -3"], 0);
}

/// /dev/stdin, /dev/fd/N of process substitution and /proc/self/fd links
/// open the pipes they name.
#[test]
fn bash_process_substitution_and_dev_stdin() {
    let script = "echo piped | cat /dev/stdin; diff <(seq 3) <(seq 4); cat <(echo sub) /dev/null; \
        paste <(seq 2) <(seq 3 4); echo to-stderr > /dev/stderr; \
        seq 5 | python3 -c 'print(open(\"/proc/self/fd/0\").read().split())'";
    same("deb-procsub", &["bash", "-c", script], 0);
}

/// Terminals from a Debian userland: Python's pty.fork and util-linux's
/// script(1), with the spec's devpts mount (as runc gets it).
#[test]
fn python_pty_and_script() {
    let mut sb = Sandbox::with_shared_rootfs("deb-pty", &debian_rootfs());
    let script = r#"python3 -c '
import pty, os, sys
pid, fd = pty.fork()
if pid == 0:
    print(os.isatty(0), os.ttyname(0).startswith("/dev/pts/"), os.tcgetpgrp(0) == os.getpid())
    sys.exit(3)
out = b""
while True:
    try:
        d = os.read(fd, 100)
    except OSError:
        break
    if not d:
        break
    out += d
print(repr(out), os.waitpid(pid, 0)[1] >> 8)
'; script -qc "tty; echo hi; stty size; stty -a | head -1" /dev/null < /dev/null"#;
    let mut p = Process::new(&["bash", "-c", script]);
    p.env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(), "HOME=/root".into()];
    let devpts = serde_json::json!({
        "destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    });
    sb.assert_same_as_runc_with(&p, &[devpts], &Compare::status(0));
}

/// Writable /proc files (comm, oom_score_adj) with Linux's rules, and
/// /proc/pid/io and smaps_rollup in their formats.
#[test]
fn proc_writable_files_io_smaps_rollup() {
    let script = "echo abc > /proc/$$/comm; od -c /proc/$$/comm | head -1; \
        echo -n 0123456789abcdefXYZ > /proc/$$/comm; cat /proc/$$/comm; cat /proc/$$/oom_score_adj; \
        echo 5 > /proc/$$/oom_score_adj; cat /proc/$$/oom_score_adj; \
        echo -5 > /proc/$$/oom_score_adj || echo lower refused; \
        echo 2000 > /proc/$$/oom_score_adj || echo range refused; sh -c 'cat /proc/$$/oom_score_adj'; \
        sh -c 'echo x > /proc/1/comm' || echo other refused; \
        sed 's/:.*//' /proc/self/io | tr '\\n' ' '; echo; sed 's/:.*//' /proc/self/smaps_rollup | tail -n +2 | tr '\\n' ' '; \
        echo; head -1 /proc/self/smaps_rollup | grep -c rollup";
    same("deb-proc-write", &["bash", "-c", script], 0);
}

/// The container's init is unkillable by the kernel's own signals with
/// their default action (a timer's SIGALRM here; a terminal's ^C alike),
/// as the init of a PID namespace is under runc.
#[test]
fn init_survives_its_own_alarm() {
    let script = "import signal, time; signal.alarm(1); time.sleep(1.3); print('alive')";
    same("deb-init-alarm", &["python3", "-c", script], 0);
}

/// `tail -f` follows a growing file by inotify (coreutils watches it with
/// IN_MODIFY and friends), and python's stdlib-only ctypes inotify sees a
/// create, a write and a rename in /tmp, as under runc.
#[test]
fn tail_follow_and_inotify_events() {
    let script = r#"
echo a > /tmp/f
(sleep 0.4; echo b >> /tmp/f; sleep 0.4; echo c >> /tmp/f) &
timeout 1.6 tail -f /tmp/f; echo "tail status $?"
python3 - <<'PY'
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
wd = libc.inotify_add_watch(fd, b"/tmp", 0xfff)
with open("/tmp/new", "w") as f: f.write("x")
os.rename("/tmp/new", "/tmp/renamed")
os.unlink("/tmp/renamed")
data = os.read(fd, 4096)
names = {1: "ACCESS", 2: "MODIFY", 4: "ATTRIB", 8: "CLOSE_WRITE", 16: "CLOSE_NOWRITE", 32: "OPEN",
         64: "MOVED_FROM", 128: "MOVED_TO", 256: "CREATE", 512: "DELETE"}
i = 0
while i < len(data):
    w, mask, cookie, n = struct.unpack_from("iIII", data, i)
    name = data[i + 16:i + 16 + n].rstrip(b"\0").decode()
    print(w == wd, "|".join(v for k, v in names.items() if mask & k), name, cookie != 0)
    i += 16 + n
PY
"#;
    same("deb-inotify", &["bash", "-c", script], 0);
}

#[test]
fn bash_background_wait() {
    same("deb-bash-bg", &["bash", "-c", "sleep 0.2 & wait; echo $?"], 0);
}

#[test]
fn sh_kill_self() {
    // A shell that is not init dies of its own SIGTERM (143)...
    same("deb-sh-kill", &["sh", "-c", "sh -c 'kill -TERM $$'; echo $?"], 0);
    // ...but the container's init ignores signals it has no handler for,
    // as the init of a PID namespace does (runc shows the same).
    same("deb-sh-kill-init", &["sh", "-c", "kill -TERM $$; echo still alive"], 0);
}

#[test]
fn coreutils_ls_recursive() {
    same("deb-ls-r", &["bash", "-c", "ls -laR /usr/lib/python3*/ | wc -l"], 0);
}

#[test]
fn find_xargs_grep() {
    same("deb-find", &["bash", "-c", "find /usr -name '*.py' | xargs grep -l import | wc -l"], 0);
}

#[test]
fn coreutils_text() {
    same(
        "deb-coreutils",
        &["bash", "-c", "seq 1000 | paste -sd+ | bc 2>/dev/null || seq 1000 | awk '{s+=$1} END {print s}'; sha256sum /etc/os-release; wc -l /etc/passwd; sort -t: -k3 -n /etc/passwd | cut -d: -f1 | head -5"],
        0,
    );
}

#[test]
fn python_hello_and_stdlib() {
    same(
        "deb-py-hello",
        &["python3", "-c", "import json, hashlib, re; print(json.dumps({'a': [1, 2]}), hashlib.sha1(b'x').hexdigest(), re.sub('b+', '-', 'abbbc'))"],
        0,
    );
}

#[test]
fn python_subprocess() {
    same(
        "deb-py-subprocess",
        &["python3", "-c", "import subprocess; r = subprocess.run(['sh', '-c', 'echo out; echo err >&2; exit 3'], capture_output=True); print(r.returncode, r.stdout, r.stderr)"],
        0,
    );
}

#[test]
fn python_multiprocessing_fork() {
    same(
        "deb-py-mp-fork",
        &["python3", "-c", "import os\nr, w = os.pipe()\npids = []\nfor i in range(4):\n    p = os.fork()\n    if p == 0:\n        os.write(w, bytes([65 + i])); os._exit(i)\n    pids.append(p)\nos.close(w)\ncodes = sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids)\nprint(codes, sorted(os.read(r, 10)))"],
        0,
    );
}

#[test]
fn python_exit_code_and_exception() {
    same("deb-py-exit", &["python3", "-c", "import sys; print('before'); sys.stdout.flush(); raise SystemExit(7)"], 7);
}

#[test]
fn perl_fork_and_pipe() {
    same(
        "deb-perl",
        &["perl", "-e", "pipe(my $r, my $w); my $p = fork; if (!$p) { close $r; print $w \"from child\\n\"; exit 4 } close $w; my $l = <$r>; waitpid($p, 0); print $l, 'status ', $? >> 8, \"\\n\""],
        0,
    );
}

#[test]
fn python_threads_and_futures() {
    same(
        "deb-py-threads",
        &["python3", "-c", "import threading, concurrent.futures\nwith concurrent.futures.ThreadPoolExecutor(8) as ex:\n    print(sum(ex.map(lambda x: x * x, range(2000))))\nev = threading.Event()\nthreading.Timer(0.05, ev.set).start()\nprint(ev.wait(5))\nlock = threading.Lock()\ncount = [0]\ndef work():\n    for _ in range(2000):\n        with lock:\n            count[0] += 1\nts = [threading.Thread(target=work) for _ in range(10)]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint(count[0], threading.active_count())"],
        0,
    );
}

#[test]
fn python_signal_alarm_interrupts_sleep() {
    same(
        "deb-py-alarm",
        &["python3", "-c", "import signal, time\nsignal.signal(signal.SIGALRM, lambda s, f: print('alarm'))\nsignal.setitimer(signal.ITIMER_REAL, 0.05)\ntime.sleep(0.3)\nprint('slept')\ndef boom(s, f):\n    raise TimeoutError('late')\nsignal.signal(signal.SIGALRM, boom)\nsignal.alarm(1)\ntry:\n    time.sleep(5)\nexcept TimeoutError as e:\n    print('interrupted:', e)"],
        0,
    );
}

#[test]
fn python_multiprocessing_pools() {
    // Pools need POSIX semaphores: sem_open maps a file of /dev/shm shared.
    same(
        "deb-py-mp",
        &["python3", "-c", "import multiprocessing as mp\nif __name__ == '__main__':\n    for m in ['fork', 'spawn']:\n        with mp.get_context(m).Pool(2) as p:\n            print(m, p.map(abs, range(-4, 4)))\n    q = mp.Queue()\n    pr = mp.Process(target=q.put, args=(42,))\n    pr.start()\n    print(q.get())\n    pr.join()\n    print(pr.exitcode)"],
        0,
    );
}

#[test]
fn shell_scratch_files_in_dev_shm() {
    same(
        "deb-shm-files",
        &["bash", "-c", "cd /dev/shm && mkdir -p a/b && echo one > a/b/f && cat a/b/f && mv a/b/f a/g && ls -R a && ln -s g a/l && cat a/l && readlink a/l && echo more >> a/g && wc -c a/g && rm -r a && ls -A && python3 -c 'import tempfile, os; d = tempfile.mkdtemp(dir=\"/dev/shm\"); open(os.path.join(d, \"x\"), \"w\").write(\"y\" * 100000); print(os.path.getsize(os.path.join(d, \"x\"))); import shutil; shutil.rmtree(d); print(os.listdir(\"/dev/shm\"))'"],
        0,
    );
}

#[test]
fn programs_and_scripts_run_from_dev_shm() {
    // A binary and a #! script copied to the tmpfs, and fexecve
    // (execveat with AT_EMPTY_PATH) through python.
    same(
        "deb-shm-exec",
        &["bash", "-c", "cp /bin/echo /dev/shm/e && /dev/shm/e copied echo && printf '#!/bin/sh\\necho script \\\"$@\\\"\\n' > /dev/shm/s && chmod +x /dev/shm/s && /dev/shm/s a b && python3 -c 'import os, sys; fd = os.open(\"/bin/echo\", os.O_RDONLY); sys.stdout.flush(); os.execve(fd, [\"echo\", \"via fexecve\"], {})'"],
        0,
    );
}

#[test]
fn procfs_as_programs_read_it() {
    // ps, the process's own /proc files, /proc/sys, and a writable /tmp.
    same(
        "deb-proc",
        &["bash", "-c", "ps -eo ppid,stat,comm --sort comm; ps -o pid,comm -p 1; grep -E '^(Name|State|PPid|Uid|Threads)' /proc/self/status; readlink /proc/self/exe /proc/self/cwd; tr '\\0' ' ' < /proc/self/cmdline; echo; ls /proc/self/fd | wc -l; cat /proc/sys/kernel/ostype /proc/sys/kernel/pid_max; cat /proc/$$/comm; test -d /proc/1/task && echo tasks; echo x > /tmp/f && cat /tmp/f; python3 -c 'import os; print(sorted(os.listdir(\"/proc/self/fd\")), os.getpid() in [int(p) for p in os.listdir(\"/proc\") if p.isdigit()])'"],
        0,
    );
}

#[test]
fn cpu_counts_from_sysfs_and_affinity() {
    same(
        "deb-cpus",
        &["bash", "-c", "getconf _NPROCESSORS_ONLN; nproc; python3 -c 'import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))'; cat /sys/devices/system/cpu/online /sys/kernel/mm/transparent_hugepage/enabled; grep -c ^processor /proc/cpuinfo"],
        0,
    );
}

#[test]
fn sqlite_database_in_tmp() {
    // SQLite takes fcntl record locks and syncs; the database lives on /tmp.
    same(
        "deb-sqlite",
        &["bash", "-c", "sqlite3 /tmp/db 'create table t(k integer primary key, v text); insert into t(v) values (\"a\"), (\"b\"); select count(*), group_concat(v) from t;' && python3 -c 'import sqlite3; c = sqlite3.connect(\"/tmp/db\"); c.executemany(\"insert into t(v) values (?)\", [(str(i),) for i in range(500)]); c.commit(); print(c.execute(\"select count(*) from t\").fetchone()[0]); d = sqlite3.connect(\"/tmp/db\", timeout=0); c.execute(\"begin exclusive\"); print(d.execute(\"pragma journal_mode\").fetchone()); ' ; flock /tmp/db -c 'echo locked'"],
        0,
    );
}

#[test]
fn tar_of_usr_share_doc() {
    same("deb-tar", &["bash", "-c", "tar -cf - /usr/share/doc 2>/dev/null | tar -tvf - | wc -l; tar -cf - /usr/share/doc/bash | tar -tf - | sort | md5sum"], 0);
}

#[test]
fn find_every_file() {
    same("deb-find-xdev", &["bash", "-c", "find / -xdev -type f | wc -l; find /usr -xdev -type l | wc -l; find /etc -xdev -newer /etc/hostname -type f | wc -l"], 0);
}

#[test]
fn dpkg_lists_packages() {
    same("deb-dpkg", &["bash", "-c", "dpkg -l | wc -l; dpkg -L bash | wc -l; dpkg -s coreutils | grep -c ."], 0);
}

#[test]
fn python_compileall_of_a_copied_tree() {
    same(
        "deb-compileall",
        &["bash", "-c", "cp -r /usr/lib/python3.11/json /usr/lib/python3.11/email /tmp/x && python3 -m compileall -q /tmp/x; echo status $?; find /tmp/x -name '*.pyc' | wc -l; python3 -c 'import sys; sys.path.insert(0, \"/tmp/x\"); import json; print(json.__file__)'"],
        0,
    );
}

#[test]
fn sqlite_wal_with_a_concurrent_reader() {
    same(
        "deb-sqlite-wal",
        &["python3", "-c", "import sqlite3, threading\nc = sqlite3.connect('/tmp/w.db', check_same_thread=False)\nprint(c.execute('pragma journal_mode=wal').fetchone()[0])\nc.execute('create table t(k integer primary key, v text)')\nc.commit()\nseen = []\ndef reader():\n    r = sqlite3.connect('/tmp/w.db')\n    last = -1\n    while last < 10000:\n        n = r.execute('select count(*) from t').fetchone()[0]\n        assert n >= last\n        last = n\n    seen.append(last)\nth = threading.Thread(target=reader)\nth.start()\nfor i in range(100):\n    c.executemany('insert into t(v) values (?)', [(str(i * 100 + j),) for j in range(100)])\n    c.commit()\nth.join()\nprint(seen, c.execute('select count(*), sum(length(v)) from t').fetchone())\nprint(c.execute('pragma integrity_check').fetchone()[0])"],
        0,
    );
}

#[test]
fn cp_a_and_rm_rf_of_5000_files() {
    same(
        "deb-cp-rm",
        &["bash", "-c", "mkdir -p /tmp/src && cd /tmp/src && for d in $(seq 50); do mkdir d$d; for f in $(seq 100); do echo $d.$f > d$d/f$f; done; done; ln -s d1/f1 link; chmod 600 d2/f2; touch -d 2001-01-01 d3/f3; cd /; cp -a /tmp/src /tmp/dst; find /tmp/dst | wc -l; stat -c '%a %N' /tmp/dst/d2/f2 /tmp/dst/link; stat -c '%a %Y' /tmp/dst/d3/f3; diff -r /tmp/src /tmp/dst && echo same; rm -rf /tmp/src /tmp/dst; ls /tmp | wc -l"],
        0,
    );
}

#[test]
fn proc_fd_maps_df_mount() {
    same(
        "deb-proc-fd-maps",
        &["bash", "-c", "exec </dev/null; ls -l /proc/self/fd | awk '{print $1, $NF}' | sed 's/:\\[.*//; s/[0-9][0-9]*/N/' | tail -n +2; awk '$6 ~ /^\\// || $6 == \"[heap]\" || $6 == \"[stack]\" || $6 == \"[vsyscall]\" {print $2, $6}' /proc/self/maps | sort -u; df /tmp /dev/shm | awk 'NR>1 {print $1, $NF}'; mount | awk '{print $3, $5}' | grep -E '^/(proc|tmp|dev/shm|sys) ' | sort"],
        0,
    );
}

#[test]
fn dropping_privileges_like_runc() {
    same(
        "deb-setpriv",
        &["bash", "-c", "id; grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status; setpriv --reuid=1000 --regid=1000 --clear-groups id; setpriv --reuid=1000 --regid=1000 --clear-groups cat /etc/shadow; echo status $?; setpriv --reuid=1000 --regid=1000 --clear-groups grep -E '^Cap(Prm|Eff)' /proc/self/status; setpriv --inh-caps=-all --bounding-set=-chown bash -c 'chown 5 /tmp; echo chown $?; grep CapBnd /proc/self/status'; python3 -c 'import os; os.setgroups([]); os.setgid(65534); os.setuid(65534); print(os.getresuid(), os.getresgid()); open(\"/etc/shadow\")' 2>&1 | tail -1"],
        0,
    );
}

#[test]
fn sqlite_wal_on_a_writable_bind_mount() {
    // WAL mode maps the -shm file shared: on a bind mount that is a host
    // file, shared through the sentry's page cache.
    let host = cordon_tests::TempDir::new("deb-wal-bind");
    let mut sb = Sandbox::with_shared_rootfs("deb-wal-bind", &debian_rootfs());
    let mut p = Process::new(&["python3", "-c", "import sqlite3\nc = sqlite3.connect('/data/w.db')\nprint(c.execute('pragma journal_mode=wal').fetchone()[0])\nc.execute('create table if not exists t(v)')\nfor i in range(20):\n    c.executemany('insert into t values (?)', [(i,)] * 50)\n    c.commit()\nr = sqlite3.connect('/data/w.db')\nprint(r.execute('select count(*), sum(v) from t').fetchone())\nprint(c.execute('pragma integrity_check').fetchone()[0])\nc.execute('delete from t')\nc.commit()"]);
    p.env = vec!["PATH=/usr/bin:/bin".into(), "LANG=C.UTF-8".into()];
    let src = host.path().to_string_lossy().into_owned();
    let extra =
        [serde_json::json!({ "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rw"] })];
    sb.assert_same_as_runc_with(&p, &extra, &Compare::status(0));
    assert!(host.path().join("w.db").exists());
}

#[test]
fn proc_fdinfo_ns_auxv() {
    same(
        "deb-proc-extras",
        &["bash", "-c", "exec 3</etc/passwd 4>>/tmp/app; read l <&3; grep -E '^(pos|flags)' /proc/self/fdinfo/3 /proc/self/fdinfo/4; ls /proc/self/ns | sort | tr '\\n' ' '; echo; readlink /proc/self/ns/pid /proc/self/ns/mnt | sed 's/[0-9]//g'; python3 -c 'import struct; d = open(\"/proc/self/auxv\", \"rb\").read(); v = dict(struct.iter_unpack(\"QQ\", d)); print(len(d) % 16, d[-16:] == bytes(16), v[6], v[11], v[23])'"],
        0,
    );
}
