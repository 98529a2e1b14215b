//! The Linux x86-64 system call ABI as data: system call numbers and names,
//! errno values, the structs the kernel copies to and from user memory, and
//! flag sets. No logic lives here.
#![forbid(unsafe_code)]

mod errno;
mod errno_table;
pub mod flags;
pub mod structs;
mod sysno;

pub use errno::Errno;
pub use sysno::{Sysno, ALL_SYSNOS, SYSNO_COUNT};

impl Sysno {
    /// The number for `n`, if a system call has it.
    pub fn from_number(n: u64) -> Option<Sysno> {
        let idx = usize::try_from(n).ok()?;
        let name = sysno::SYSNO_NAMES.get(idx)?;
        if name.is_empty() {
            return None;
        }
        ALL_SYSNOS.iter().copied().find(|s| *s as usize == idx)
    }

    /// The kernel's name for this call, e.g. `openat`.
    pub fn name(self) -> &'static str {
        sysno::SYSNO_NAMES[self as usize]
    }

    /// The name of number `n`, if any call has it.
    pub fn name_of(n: u64) -> Option<&'static str> {
        let name = sysno::SYSNO_NAMES.get(usize::try_from(n).ok()?)?;
        (!name.is_empty()).then_some(*name)
    }

    /// The number of a call by name.
    pub fn from_name(name: &str) -> Option<Sysno> {
        ALL_SYSNOS.iter().copied().find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        assert_eq!(Sysno::read as u32, 0);
        assert_eq!(Sysno::from_number(257), Some(Sysno::openat));
        assert_eq!(Sysno::openat.name(), "openat");
        assert_eq!(Sysno::from_name("exit_group"), Some(Sysno::exit_group));
        assert_eq!(Sysno::from_number(100_000), None);
        for s in ALL_SYSNOS {
            assert_eq!(Sysno::from_number(*s as u64), Some(*s));
        }
    }

    #[test]
    fn errno_names() {
        assert_eq!(Errno::ENOENT.0, 2);
        assert_eq!(Errno::ENOENT.name(), "ENOENT");
        assert_eq!(Errno::ENOSYS.to_string(), "ENOSYS (Invalid system call number)");
    }
}
