//! Container state under `<root>/<id>/`: `state.json` (written to a temp
//! file, fsynced and renamed), the sandbox's control socket, and the file
//! the sandbox writes its exit status to. Every command holds a `flock` on
//! the directory while it reads or changes it.
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use sentry::control::{Connection, Reply, Request};
use serde::{Deserialize, Serialize};

/// Checks a container id the way runc does.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok {
        bail!("invalid container id format: {id:?}");
    }
    Ok(())
}

/// The error for an id with no state directory (the text containerd's
/// runc shim looks for).
pub fn not_found(id: &str) -> anyhow::Error {
    anyhow::anyhow!("container \"{id}\" does not exist")
}

/// What `state.json` holds: the OCI state, and what later commands need to
/// find the sandbox's host processes again.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// The sentry's host pid (0 while creating).
    pub pid: i32,
    /// The status when last written (`state` reports the live one).
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The sentry's start time (/proc/pid/stat), so that a reused pid is
    /// never taken for it.
    #[serde(default)]
    pub sentry_start: u64,
    /// The gofers' pids and start times.
    #[serde(default)]
    pub gofers: Vec<(i32, u64)>,
}

/// The OCI state as `cordon state` prints it.
#[derive(Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

/// A locked state directory, removed when dropped unless kept.
pub struct StateDir {
    pub dir: PathBuf,
    pub id: String,
    lock: Flock<fs::File>,
    keep: bool,
}

impl StateDir {
    /// Creates `<root>/<id>` and locks it, failing if the container exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        fs::create_dir_all(root).with_context(|| format!("creating state root {}", root.display()))?;
        let dir = root.join(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!("container \"{id}\" already exists"),
            Err(e) => return Err(e).with_context(|| format!("creating state directory {}", dir.display())),
        }
        let mut s = match Self::lock(&dir, id, true) {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        s.keep = false;
        Ok(s)
    }

    /// Opens and locks the state of container `id` (None if there is none).
    pub fn open(root: &Path, id: &str, exclusive: bool) -> Result<Option<StateDir>> {
        validate_id(id)?;
        let dir = root.join(id);
        if !dir.is_dir() {
            return Ok(None);
        }
        let s = match Self::lock(&dir, id, exclusive) {
            Ok(s) => s,
            Err(_) if !dir.is_dir() => return Ok(None),
            Err(e) => return Err(e),
        };
        // It may have been deleted while we waited for the lock.
        if !dir.is_dir() {
            return Ok(None);
        }
        Ok(Some(s))
    }

    /// Opens the state of `id`, or fails with runc's "does not exist".
    pub fn open_existing(root: &Path, id: &str, exclusive: bool) -> Result<StateDir> {
        Self::open(root, id, exclusive)?.ok_or_else(|| not_found(id))
    }

    fn lock(dir: &Path, id: &str, exclusive: bool) -> Result<StateDir> {
        let f = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        let arg = if exclusive { FlockArg::LockExclusive } else { FlockArg::LockShared };
        let lock = Flock::lock(f, arg).map_err(|(_, e)| e).with_context(|| format!("locking {}", dir.display()))?;
        Ok(StateDir { dir: dir.to_owned(), id: id.to_owned(), lock, keep: true })
    }

    /// A short path to a file in the directory (through the held fd, so
    /// that a long state root still fits a unix socket address).
    pub fn short_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.lock.as_raw_fd()))
    }

    pub fn read(&self) -> Result<ContainerState> {
        let path = self.dir.join("state.json");
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes `state.json` atomically: a temp file, fsync, rename.
    pub fn write(&self, state: &ContainerState) -> Result<()> {
        let tmp = self.dir.join("state.json.tmp");
        let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(state)?)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join("state.json"))?;
        Ok(())
    }

    /// Keeps the directory when this handle is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Removes the directory now.
    pub fn remove(mut self) -> Result<()> {
        self.keep = true;
        fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display()))
    }

    /// Whether the container is a pod's further container, in the sandbox
    /// of the pod's sandbox container: its `control.sock` is a symlink to
    /// that sandbox's.
    pub fn in_pod(&self) -> bool {
        fs::symlink_metadata(self.dir.join("control.sock")).is_ok_and(|m| m.file_type().is_symlink())
    }

    /// `req` as the sandbox takes it for this container (for a pod's
    /// further container, wrapped with its id).
    pub fn for_container(&self, req: Request) -> Request {
        if self.in_pod() {
            Request::Container { id: self.id.clone(), request: Box::new(req) }
        } else {
            req
        }
    }

    /// Connects to the sandbox's control socket.
    pub fn connect(&self) -> Result<Connection> {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        let sock = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
            .context("creating a control socket")?;
        let addr = UnixAddr::new(&self.short_path("control.sock"))?;
        connect(sock.as_raw_fd(), &addr).context("connecting to the sandbox")?;
        Ok(Connection::new(sock))
    }

    /// Sends one request to the sandbox and returns its reply (an `Error`
    /// reply becomes an error).
    pub fn request(&self, req: Request) -> Result<Reply> {
        let conn = self.connect()?;
        conn.send(&self.for_container(req), &[])?;
        match conn.recv::<Reply>()?.0 {
            Reply::Error { msg } => Err(anyhow::anyhow!(msg)),
            r => Ok(r),
        }
    }

    /// The container's status now, checked against the live sandbox.
    pub fn status(&self, st: &ContainerState) -> String {
        if st.pid == 0 {
            return "creating".into();
        }
        if !alive(st.pid, st.sentry_start) {
            return "stopped".into();
        }
        match self.request(Request::State) {
            Ok(Reply::State { status, .. }) => status.as_str().into(),
            _ => "stopped".into(),
        }
    }

    /// The container's exit status as wait(2) reports it, once the sandbox
    /// has written it.
    pub fn exit_status(&self) -> Option<i32> {
        let text = fs::read_to_string(self.dir.join("exit")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Field 22 (start time) and field 3 (state) of /proc/pid/stat.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    Some((fields.get(19)?.parse().ok()?, state))
}

/// Whether host process `pid`, started at `start`, is still alive (not a
/// zombie).
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && proc_stat(pid).is_some_and(|(s, state)| s == start && !matches!(state, 'Z' | 'X'))
}

/// Kills host process `pid` (if it is still the one that started at
/// `start`) and waits up to `wait` for it to be gone.
pub fn kill_and_wait(pid: i32, start: u64, wait: std::time::Duration) {
    if !alive(pid, start) {
        return;
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let deadline = std::time::Instant::now() + wait;
    while alive(pid, start) && std::time::Instant::now() < deadline {
        // Our own child: reap it; otherwise its parent will.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Now, as RFC 3339 with nanoseconds in UTC (how runc writes `created`).
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Every container id under `root`.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("state.json").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}
