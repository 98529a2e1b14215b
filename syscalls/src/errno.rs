//! Linux error numbers as the guest sees them.
use std::fmt;

/// A Linux error number (positive), e.g. `Errno::ENOENT`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Alias used by many callers.
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;

    /// The symbolic name, e.g. `ENOENT`, or `E?` for an unknown number.
    pub fn name(self) -> &'static str {
        self.entry().map_or("E?", |e| e.1)
    }

    /// The C library's description.
    pub fn description(self) -> &'static str {
        self.entry().map_or("Unknown error", |e| e.2)
    }

    /// The errno for a host error number (same numbering on x86-64 Linux).
    pub fn from_raw(n: i32) -> Errno {
        Errno(n)
    }

    /// The value a system call returns for this error: `-errno` as u64.
    pub fn as_return(self) -> u64 {
        (-i64::from(self.0)) as u64
    }

    fn entry(self) -> Option<&'static (i32, &'static str, &'static str)> {
        crate::errno_table::ERRNO_TABLE.iter().find(|e| e.0 == self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

impl std::error::Error for Errno {}
