//! The kernel: state shared by every task of a sandbox.
use std::sync::Arc;
use std::time::Instant;

use platform::Platform;

use crate::mm::MemoryFile;
use crate::vfs::{Dentry, GoferMount};

/// The sandbox's kernel.
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    pub root: Arc<Dentry>,
    pub root_mount: Arc<GoferMount>,
    pub hostname: Vec<u8>,
    pub boot_time: Instant,
    pub strace: bool,
}
