//! pidfd: a file naming a process, readable (in poll) once it has exited.
use std::sync::Arc;

use syscalls::flags::poll as P;

use super::AnonFile;
use crate::process::ThreadGroup;
use crate::task::Task;

pub struct PidFd {
    pub group: Arc<ThreadGroup>,
}

impl AnonFile for PidFd {
    fn name(&self) -> &'static str {
        "pidfd"
    }

    fn readiness(&self, _t: &Task) -> i16 {
        if self.group.state().exit.is_some() {
            P::POLLIN
        } else {
            0
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
