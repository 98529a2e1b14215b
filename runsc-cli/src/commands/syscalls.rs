//! `cordon syscalls`: the system calls the sandbox serves, and how well.
use anyhow::Result;

pub fn syscalls() -> Result<u8> {
    let mut full = 0;
    let mut partial = 0;
    for e in sentry::syscalls::entries() {
        let level = match e.support {
            sentry::syscalls::Support::Full => {
                full += 1;
                "full"
            }
            sentry::syscalls::Support::Partial => {
                partial += 1;
                "partial"
            }
        };
        println!("{:4} {:20} {:8} {}", e.sysno as u32, e.sysno.name(), level, e.note);
    }
    let known = syscalls::ALL_SYSNOS.len();
    println!("{full} full, {partial} partial, {} return ENOSYS (of {known})", known - full - partial);
    Ok(0)
}
