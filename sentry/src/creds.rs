//! Credentials: user and group ids, supplementary groups and capability
//! sets, with Linux's rules for changing them (setuid family, capset,
//! prctl) and for what they allow (permission checks ask `capable`).
use syscalls::flags::cap::{self as C, ALL, FS_MASK};
use syscalls::Errno;

/// Most supplementary groups (NGROUPS_MAX).
pub const NGROUPS_MAX: usize = 65536;

/// The capability sets of a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
}

impl CapSets {
    /// Every capability in every set but ambient (a host root's view).
    pub fn full() -> CapSets {
        CapSets { effective: ALL, permitted: ALL, inheritable: 0, bounding: ALL, ambient: 0 }
    }
}

/// User and group ids and capabilities.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    pub caps: CapSets,
    /// PR_SET_KEEPCAPS: keep permitted capabilities when every uid leaves 0.
    pub keep_caps: bool,
    /// PR_SET_NO_NEW_PRIVS: exec never grants privileges (set-id bits are
    /// ignored). Inherited and never cleared.
    pub no_new_privs: bool,
}

/// "Leave this id alone" in the setre*/setres* calls.
const KEEP: u32 = u32::MAX;

impl Credentials {
    /// A task with these ids and capabilities.
    pub fn new(uid: u32, gid: u32, groups: Vec<u32>, caps: CapSets, no_new_privs: bool) -> Credentials {
        Credentials {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups,
            caps,
            keep_caps: false,
            no_new_privs,
        }
    }

    /// Whether capability `cap` is effective.
    pub fn capable(&self, cap: u32) -> bool {
        cap <= C::CAP_LAST_CAP && self.caps.effective & (1 << cap) != 0
    }

    /// Whether `gid` is the fs group or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// Linux's cap_emulate_setxuid and the fsuid fix-up: capabilities
    /// follow uid changes away from and back to 0.
    fn fix_caps_after_uid_change(&mut self, old: &Credentials) {
        let was_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        let none_root = self.uid != 0 && self.euid != 0 && self.suid != 0;
        if was_root && none_root && !self.keep_caps {
            self.caps.permitted = 0;
            self.caps.effective = 0;
        }
        if was_root && none_root {
            self.caps.ambient = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.caps.effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.caps.effective = self.caps.permitted;
        }
        self.fix_fs_caps(old.fsuid);
    }

    fn fix_fs_caps(&mut self, old_fsuid: u32) {
        if old_fsuid == 0 && self.fsuid != 0 {
            self.caps.effective &= !FS_MASK;
        }
        if old_fsuid != 0 && self.fsuid == 0 {
            self.caps.effective |= self.caps.permitted & FS_MASK;
        }
    }

    /// setuid(2).
    pub fn set_uid(&mut self, uid: u32) -> Result<(), Errno> {
        if uid == KEEP {
            return Err(Errno::EINVAL);
        }
        let old = self.clone();
        if self.capable(C::CAP_SETUID) {
            (self.uid, self.euid, self.suid) = (uid, uid, uid);
        } else if uid == self.uid || uid == self.suid {
            self.euid = uid;
        } else {
            return Err(Errno::EPERM);
        }
        self.fsuid = self.euid;
        self.fix_caps_after_uid_change(&old);
        Ok(())
    }

    /// setreuid(2).
    pub fn set_reuid(&mut self, ruid: u32, euid: u32) -> Result<(), Errno> {
        let old = self.clone();
        let priv_ = self.capable(C::CAP_SETUID);
        if ruid != KEEP && !priv_ && ruid != old.uid && ruid != old.euid {
            return Err(Errno::EPERM);
        }
        if euid != KEEP && !priv_ && euid != old.uid && euid != old.euid && euid != old.suid {
            return Err(Errno::EPERM);
        }
        if ruid != KEEP {
            self.uid = ruid;
        }
        if euid != KEEP {
            self.euid = euid;
        }
        if ruid != KEEP || (euid != KEEP && euid != old.uid) {
            self.suid = self.euid;
        }
        self.fsuid = self.euid;
        self.fix_caps_after_uid_change(&old);
        Ok(())
    }

    /// setresuid(2).
    pub fn set_resuid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let old = self.clone();
        if !self.capable(C::CAP_SETUID) {
            let ok = |v: u32| v == KEEP || v == old.uid || v == old.euid || v == old.suid;
            if !(ok(r) && ok(e) && ok(s)) {
                return Err(Errno::EPERM);
            }
        }
        if r != KEEP {
            self.uid = r;
        }
        if e != KEEP {
            self.euid = e;
        }
        if s != KEEP {
            self.suid = s;
        }
        self.fsuid = self.euid;
        self.fix_caps_after_uid_change(&old);
        Ok(())
    }

    /// setfsuid(2): returns the old fsuid whatever happens.
    pub fn set_fsuid(&mut self, fsuid: u32) -> u32 {
        let old = self.fsuid;
        if fsuid != KEEP
            && (self.capable(C::CAP_SETUID) || [self.uid, self.euid, self.suid, self.fsuid].contains(&fsuid))
        {
            self.fsuid = fsuid;
            self.fix_fs_caps(old);
        }
        old
    }

    /// setgid(2).
    pub fn set_gid(&mut self, gid: u32) -> Result<(), Errno> {
        if gid == KEEP {
            return Err(Errno::EINVAL);
        }
        if self.capable(C::CAP_SETGID) {
            (self.gid, self.egid, self.sgid) = (gid, gid, gid);
        } else if gid == self.gid || gid == self.sgid {
            self.egid = gid;
        } else {
            return Err(Errno::EPERM);
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// setregid(2).
    pub fn set_regid(&mut self, rgid: u32, egid: u32) -> Result<(), Errno> {
        let old = self.clone();
        let priv_ = self.capable(C::CAP_SETGID);
        if rgid != KEEP && !priv_ && rgid != old.gid && rgid != old.egid {
            return Err(Errno::EPERM);
        }
        if egid != KEEP && !priv_ && egid != old.gid && egid != old.egid && egid != old.sgid {
            return Err(Errno::EPERM);
        }
        if rgid != KEEP {
            self.gid = rgid;
        }
        if egid != KEEP {
            self.egid = egid;
        }
        if rgid != KEEP || (egid != KEEP && egid != old.gid) {
            self.sgid = self.egid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// setresgid(2).
    pub fn set_resgid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let old = self.clone();
        if !self.capable(C::CAP_SETGID) {
            let ok = |v: u32| v == KEEP || v == old.gid || v == old.egid || v == old.sgid;
            if !(ok(r) && ok(e) && ok(s)) {
                return Err(Errno::EPERM);
            }
        }
        if r != KEEP {
            self.gid = r;
        }
        if e != KEEP {
            self.egid = e;
        }
        if s != KEEP {
            self.sgid = s;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// setfsgid(2): returns the old fsgid.
    pub fn set_fsgid(&mut self, fsgid: u32) -> u32 {
        let old = self.fsgid;
        if fsgid != KEEP
            && (self.capable(C::CAP_SETGID) || [self.gid, self.egid, self.sgid, self.fsgid].contains(&fsgid))
        {
            self.fsgid = fsgid;
        }
        old
    }

    /// setgroups(2).
    pub fn set_groups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if groups.len() > NGROUPS_MAX {
            return Err(Errno::EINVAL);
        }
        if !self.capable(C::CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        self.groups = groups;
        Ok(())
    }

    /// capset(2) on oneself: permitted may only shrink, inheritable may only
    /// take permitted capabilities (or bounding ones with CAP_SETPCAP),
    /// effective must stay within permitted.
    pub fn set_caps(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        let (effective, permitted, inheritable) = (effective & ALL, permitted & ALL, inheritable & ALL);
        let c = self.caps;
        let inh_limit =
            if self.capable(C::CAP_SETPCAP) { c.inheritable | c.bounding } else { c.inheritable | c.permitted };
        if permitted & !c.permitted != 0
            || inheritable & !inh_limit != 0
            || inheritable & !(c.inheritable | c.bounding) != 0
        {
            return Err(Errno::EPERM);
        }
        if effective & !permitted != 0 {
            return Err(Errno::EPERM);
        }
        self.caps.effective = effective;
        self.caps.permitted = permitted;
        self.caps.inheritable = inheritable;
        // Ambient capabilities must stay permitted and inheritable.
        self.caps.ambient &= permitted & inheritable;
        Ok(())
    }

    /// PR_CAPBSET_DROP.
    pub fn drop_bounding(&mut self, cap: u32) -> Result<(), Errno> {
        if cap > C::CAP_LAST_CAP {
            return Err(Errno::EINVAL);
        }
        if !self.capable(C::CAP_SETPCAP) {
            return Err(Errno::EPERM);
        }
        self.caps.bounding &= !(1 << cap);
        Ok(())
    }

    /// PR_CAP_AMBIENT raise (true) or lower (false).
    pub fn set_ambient(&mut self, cap: u32, raise: bool) -> Result<(), Errno> {
        if cap > C::CAP_LAST_CAP {
            return Err(Errno::EINVAL);
        }
        let bit = 1u64 << cap;
        if raise {
            if self.caps.permitted & bit == 0 || self.caps.inheritable & bit == 0 {
                return Err(Errno::EPERM);
            }
            self.caps.ambient |= bit;
        } else {
            self.caps.ambient &= !bit;
        }
        Ok(())
    }

    /// What execve does to the credentials (Linux's cap_bprm_creds_from_file
    /// without file capabilities): a set-id file (`set_uid`/`set_gid`, when
    /// privileges may grow) changes the effective ids; root gets its bounding
    /// set as permitted; everyone keeps ambient capabilities. Returns whether
    /// the exec is "secure" (AT_SECURE).
    pub fn exec(&mut self, set_uid: Option<u32>, set_gid: Option<u32>) -> bool {
        let mut secure = false;
        if !self.no_new_privs {
            if let Some(u) = set_uid.filter(|u| *u != self.euid) {
                self.euid = u;
                secure = true;
            }
            if let Some(g) = set_gid.filter(|g| *g != self.egid) {
                self.egid = g;
                secure = true;
            }
        }
        if secure {
            self.caps.ambient = 0;
        }
        let c = self.caps;
        let root = self.euid == 0 || self.uid == 0;
        let permitted = if root { c.inheritable | c.bounding } else { 0 } | self.caps.ambient;
        self.caps.permitted = permitted;
        self.caps.effective = if self.euid == 0 { permitted } else { self.caps.ambient };
        if self.uid != self.euid && self.euid == 0 {
            secure = true;
        }
        self.suid = self.euid;
        self.fsuid = self.euid;
        self.sgid = self.egid;
        self.fsgid = self.egid;
        secure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Credentials {
        Credentials::new(0, 0, vec![], CapSets::full(), false)
    }

    #[test]
    fn dropping_root_drops_capabilities() {
        let mut c = root();
        c.set_resuid(1000, 1000, 1000).unwrap();
        assert_eq!((c.caps.permitted, c.caps.effective), (0, 0));
        assert_eq!(c.set_uid(0), Err(Errno::EPERM));
        // With a saved uid of 0 the effective set comes back.
        let mut c = root();
        c.set_reuid(KEEP, 1000).unwrap();
        assert_eq!(c.caps.effective, 0);
        assert_eq!(c.caps.permitted, ALL);
        assert_eq!(c.suid, 1000);
        let mut c = root();
        c.set_resuid(KEEP, 1000, KEEP).unwrap();
        assert_eq!(c.caps.effective, 0);
        c.set_resuid(KEEP, 0, KEEP).unwrap();
        assert_eq!(c.caps.effective, ALL);
        // keepcaps.
        let mut c = root();
        c.keep_caps = true;
        c.set_resuid(5, 5, 5).unwrap();
        assert_eq!((c.caps.permitted, c.caps.effective), (ALL, 0));
    }

    #[test]
    fn fsuid_moves_fs_capabilities() {
        let mut c = root();
        assert_eq!(c.set_fsuid(1000), 0);
        assert!(!c.capable(C::CAP_DAC_OVERRIDE));
        assert!(c.capable(C::CAP_SETUID));
        assert_eq!(c.set_fsuid(0), 1000);
        assert!(c.capable(C::CAP_DAC_OVERRIDE));
    }

    #[test]
    fn capset_rules() {
        let mut c = Credentials::new(
            0,
            0,
            vec![],
            CapSets { effective: 0b11, permitted: 0b11, bounding: ALL, ..Default::default() },
            false,
        );
        assert_eq!(c.set_caps(0b111, 0b111, 0), Err(Errno::EPERM));
        assert_eq!(c.set_caps(0b10, 0b1, 0), Err(Errno::EPERM));
        c.set_caps(0b1, 0b1, 0b1).unwrap();
        assert_eq!(c.set_caps(0b1, 0b11, 0), Err(Errno::EPERM));
    }

    #[test]
    fn exec_of_root_and_of_users() {
        let mut c = Credentials::new(0, 0, vec![], CapSets { bounding: 0b1010, ..Default::default() }, false);
        assert!(!c.exec(None, None));
        assert_eq!((c.caps.permitted, c.caps.effective), (0b1010, 0b1010));
        let mut u = Credentials::new(1000, 1000, vec![], CapSets { bounding: ALL, ..Default::default() }, false);
        u.exec(None, None);
        assert_eq!(u.caps.permitted, 0);
        // A setuid-root file makes an unprivileged user root, unless no_new_privs.
        assert!(u.exec(Some(0), None));
        assert_eq!((u.uid, u.euid, u.suid), (1000, 0, 0));
        assert_eq!(u.caps.effective, ALL);
        let mut n = Credentials::new(1000, 1000, vec![], CapSets { bounding: ALL, ..Default::default() }, true);
        assert!(!n.exec(Some(0), None));
        assert_eq!(n.euid, 1000);
    }
}
