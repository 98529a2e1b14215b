//! The ELF loader: maps an executable (and its program interpreter) into a
//! fresh address space and builds the initial stack.
use std::os::fd::OwnedFd;
use std::sync::Arc;

use platform::{Prot, Registers};
use syscalls::flags::{auxv::*, mode};
use syscalls::Errno;

use crate::mm::{page_down, page_up, FileSource, MemoryManager, TaskMemory, VmaKind, PAGE};
use crate::task::Task;
use crate::vfs::Dentry;
use crate::BootError;

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;
/// Where position-independent executables are loaded (Linux's
/// ELF_ET_DYN_BASE without randomisation).
const PIE_BASE: u64 = 0x5555_5555_4000;
/// Where the program interpreter is loaded.
const INTERP_BASE: u64 = 0x7fef_f000_0000;
/// Size of the main thread's stack area.
const STACK_SIZE: u64 = 8 << 20;
/// Largest argv + envp accepted (like Linux's limit of a quarter stack).
const MAX_ARG_BYTES: usize = 2 << 20;

struct Elf {
    entry: u64,
    phdrs: Vec<Phdr>,
    ty: u16,
    phoff: u64,
    phentsize: u16,
}

#[derive(Clone, Copy)]
struct Phdr {
    ty: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Where an executable's bytes come from.
enum ExecFile {
    /// A gofer file: the host fd it donated.
    Host(Arc<OwnedFd>),
    /// A tmpfs file.
    Tmpfs(Arc<crate::vfs::tmpfs::Inode>),
}

fn pread_exact(fd: &ExecFile, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let r = match fd {
            ExecFile::Host(fd) => nix::sys::uio::pread(fd.as_ref(), &mut buf[done..], (off + done as u64) as i64)
                .map_err(|e| Errno::from_raw(e as i32)),
            ExecFile::Tmpfs(inode) => inode.read(off + done as u64, &mut buf[done..]),
        };
        match r {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn parse(fd: &ExecFile) -> Result<Elf, Errno> {
    let mut h = [0u8; 64];
    if pread_exact(fd, &mut h, 0)? < 64 || &h[..4] != b"\x7fELF" {
        return Err(Errno::ENOEXEC);
    }
    // 64-bit, little endian, x86-64.
    if h[4] != 2 || h[5] != 1 || u16_at(&h, 18) != EM_X86_64 {
        return Err(Errno::ENOEXEC);
    }
    let ty = u16_at(&h, 16);
    if ty != ET_EXEC && ty != ET_DYN {
        return Err(Errno::ENOEXEC);
    }
    let entry = u64_at(&h, 24);
    let phoff = u64_at(&h, 32);
    let phentsize = u16_at(&h, 54);
    let phnum = u16_at(&h, 56);
    if phentsize != 56 || phnum == 0 || phnum > 1024 {
        return Err(Errno::ENOEXEC);
    }
    let mut tbl = vec![0u8; 56 * phnum as usize];
    if pread_exact(fd, &mut tbl, phoff)? < tbl.len() {
        return Err(Errno::ENOEXEC);
    }
    let phdrs = tbl
        .chunks(56)
        .map(|p| Phdr {
            ty: u32_at(p, 0),
            flags: u32_at(p, 4),
            offset: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            filesz: u64_at(p, 32),
            memsz: u64_at(p, 40),
        })
        .collect();
    Ok(Elf { entry, phdrs, ty, phoff, phentsize })
}

/// Maps the PT_LOAD segments at `bias`; returns the end of the highest one.
fn map_segments(t: &mut Task, elf: &Elf, fd: &ExecFile, bias: u64, file: &Arc<Dentry>) -> Result<u64, Errno> {
    let label = |offset| crate::mm::MapLabel { file: file.clone(), offset };
    let mut top = 0;
    for p in elf.phdrs.iter().filter(|p| p.ty == PT_LOAD && p.memsz > 0) {
        if p.filesz > p.memsz || p.vaddr % PAGE != p.offset % PAGE {
            return Err(Errno::ENOEXEC);
        }
        let vaddr = bias.checked_add(p.vaddr).ok_or(Errno::ENOEXEC)?;
        let start = page_down(vaddr);
        let end = page_up(vaddr.checked_add(p.memsz).ok_or(Errno::ENOEXEC)?).ok_or(Errno::ENOEXEC)?;
        let mut prot = Prot::empty();
        if p.flags & 4 != 0 {
            prot |= Prot::READ;
        }
        if p.flags & 2 != 0 {
            prot |= Prot::WRITE;
        }
        if p.flags & 1 != 0 {
            prot |= Prot::EXEC;
        }
        let lead = vaddr - start;
        match fd {
            ExecFile::Host(fd) => {
                // The file's pages, then anonymous pages for the rest of
                // the bss, as Linux lays a segment out.
                let fend = page_up(vaddr + p.filesz).ok_or(Errno::ENOEXEC)?.clamp(start, end);
                let mut mm = t.mm.lock();
                if fend > start {
                    let src = FileSource { fd: fd.clone(), offset: p.offset - lead, len: lead + p.filesz };
                    mm.map(start, fend - start, prot, VmaKind::File, Some(src), false)?;
                    mm.set_label(start, fend, label(p.offset - lead));
                }
                if end > fend {
                    mm.map(fend, end - fend, prot, VmaKind::Anon, None, false)?;
                }
            }
            ExecFile::Tmpfs(_) => {
                // tmpfs data is copied in (a private mapping of it).
                t.mm.lock().map(start, end - start, prot, VmaKind::File, None, false)?;
                t.mm.lock().set_label(start, end, label(p.offset - lead));
                // In pieces, up to the end of the file: a hostile header
                // may claim any size.
                let want = lead + p.filesz;
                let mut buf = vec![0u8; crate::mm::MAX_COPY];
                let mut done = 0u64;
                while done < want {
                    let n = (want - done).min(buf.len() as u64) as usize;
                    let got = pread_exact(fd, &mut buf[..n], p.offset - lead + done)?;
                    t.mm.poke(start + done, &buf[..got])?;
                    if got < n {
                        break;
                    }
                    done += got as u64;
                }
            }
        }
        top = top.max(end);
    }
    if top == 0 {
        return Err(Errno::ENOEXEC);
    }
    Ok(top)
}

/// Opens an executable the way execve does: a regular file with an execute
/// bit.
fn open_exec(t: &Task, d: &Arc<Dentry>) -> Result<ExecFile, Errno> {
    let a = d.attr();
    if a.mode & mode::S_IFMT != mode::S_IFREG || a.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    if d.gofer().is_some_and(|(_, m)| m.noexec) {
        return Err(Errno::EACCES);
    }
    let _ = t;
    match d.tmpfs() {
        Some(inode) => Ok(ExecFile::Tmpfs(inode.clone())),
        None => d.host_fd(0).map(ExecFile::Host),
    }
}

/// Loads `path` with `argv`/`envp` into the task's (empty) address space and
/// points its registers at the entry.
pub fn load(t: &mut Task, exe: &Arc<Dentry>, path: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<(), Errno> {
    let fd = open_exec(t, exe)?;
    let elf = parse(&fd)?;
    let bias = if elf.ty == ET_DYN { PIE_BASE } else { 0 };
    let top = map_segments(t, &elf, &fd, bias, exe)?;
    let mut entry = bias + elf.entry;
    let mut base = 0;
    if let Some(ip) = elf.phdrs.iter().find(|p| p.ty == PT_INTERP) {
        if ip.filesz == 0 || ip.filesz > 4096 {
            return Err(Errno::ENOEXEC);
        }
        let mut name = vec![0u8; ip.filesz as usize];
        pread_exact(&fd, &mut name, ip.offset)?;
        if let Some(nul) = name.iter().position(|b| *b == 0) {
            name.truncate(nul);
        }
        let interp = t.lookup(syscalls::flags::AT_FDCWD, &name, true)?;
        let ifd = open_exec(t, &interp)?;
        let ielf = parse(&ifd)?;
        if ielf.ty != ET_DYN || ielf.phdrs.iter().any(|p| p.ty == PT_INTERP) {
            return Err(Errno::ELIBBAD);
        }
        map_segments(t, &ielf, &ifd, INTERP_BASE, &interp)?;
        entry = INTERP_BASE + ielf.entry;
        base = INTERP_BASE;
    }
    let phdr = match elf.phdrs.iter().find(|p| p.ty == PT_PHDR) {
        Some(p) => bias + p.vaddr,
        None => elf
            .phdrs
            .iter()
            .find(|p| p.ty == PT_LOAD && p.offset <= elf.phoff && elf.phoff < p.offset + p.filesz)
            .map(|p| bias + p.vaddr + (elf.phoff - p.offset))
            .unwrap_or(0),
    };
    let exec_stack = elf.phdrs.iter().find(|p| p.ty == PT_GNU_STACK).is_some_and(|p| p.flags & 1 != 0);
    let stack_top = t.mm.max_addr - (64 << 20);
    let mut stack_prot = Prot::READ | Prot::WRITE;
    if exec_stack {
        stack_prot |= Prot::EXEC;
    }
    {
        let mut mm = t.mm.lock();
        mm.brk_start = top;
        mm.brk = top;
        mm.map(stack_top - STACK_SIZE, STACK_SIZE, stack_prot, VmaKind::Stack, None, false)?;
        mm.mmap_base = stack_top - STACK_SIZE - (128 << 20);
    }
    let aux = [
        (AT_PHDR, phdr),
        (AT_PHENT, u64::from(elf.phentsize)),
        (AT_PHNUM, elf.phdrs.len() as u64),
        (AT_PAGESZ, PAGE),
        (AT_BASE, base),
        (AT_FLAGS, 0),
        (AT_ENTRY, bias + elf.entry),
        (AT_UID, u64::from(t.creds.uid)),
        (AT_EUID, u64::from(t.creds.euid)),
        (AT_GID, u64::from(t.creds.gid)),
        (AT_EGID, u64::from(t.creds.egid)),
        (AT_SECURE, u64::from(t.secure_exec)),
        (AT_HWCAP, hwcap()),
        (AT_HWCAP2, 0),
        (AT_CLKTCK, 100),
    ];
    let sp = build_stack(t, stack_top, path, argv, envp, &aux)?;

    let mut regs = Registers::zeroed();
    regs.0.rip = entry;
    regs.0.rsp = sp;
    regs.0.cs = 0x33;
    regs.0.ss = 0x2b;
    regs.0.eflags = 0x202;
    t.regs = regs;
    let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    t.set_comm(name);
    t.exe = Some(exe.clone());
    t.publish();
    Ok(())
}

fn hwcap() -> u64 {
    // What Linux reports: CPUID leaf 1's EDX feature bits.
    let r = std::arch::x86_64::__cpuid(1);
    u64::from(r.edx)
}

/// Writes strings, pointers and the auxiliary vector below `top`; returns
/// the initial stack pointer (pointing at argc).
fn build_stack(
    t: &mut Task,
    top: u64,
    path: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    aux: &[(u64, u64)],
) -> Result<u64, Errno> {
    let total: usize = argv.iter().chain(envp).map(|s| s.len() + 1).sum();
    if total > MAX_ARG_BYTES {
        return Err(Errno::E2BIG);
    }
    let mut sp = top;
    let mut push_bytes = |t: &Task, data: &[u8]| -> Result<u64, Errno> {
        sp -= data.len() as u64;
        t.mm.poke(sp, data)?;
        Ok(sp)
    };
    let mut random = [0u8; 16];
    getrandom(&mut random);
    let random_at = push_bytes(t, &random)?;
    let platform_at = push_bytes(t, b"x86_64\0")?;
    let mut execfn = path.to_vec();
    execfn.push(0);
    let execfn_at = push_bytes(t, &execfn)?;
    // Argument then environment strings, each in order and contiguous, as
    // Linux lays them out (and /proc/pid/cmdline and environ read them).
    let mut block = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(argv.len() + envp.len());
    for s in argv.iter().chain(envp) {
        offsets.push(block.len() as u64);
        block.extend_from_slice(s);
        block.push(0);
    }
    let args_len: usize = argv.iter().map(|a| a.len() + 1).sum();
    let block_at = push_bytes(t, &block)?;
    let arg_ptrs: Vec<u64> = offsets[..argv.len()].iter().map(|o| block_at + o).collect();
    let env_ptrs: Vec<u64> = offsets[argv.len()..].iter().map(|o| block_at + o).collect();
    {
        let mut mm = t.mm.lock();
        mm.arg_range = (block_at, block_at + args_len as u64);
        mm.env_range = (block_at + args_len as u64, block_at + block.len() as u64);
    }
    // The table: argc, argv..., 0, envp..., 0, auxv pairs..., AT_NULL.
    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(arg_ptrs.iter());
    words.push(0);
    words.extend(env_ptrs.iter());
    words.push(0);
    for &(k, v) in aux {
        words.extend([k, v]);
    }
    words.extend([AT_RANDOM, random_at, AT_PLATFORM, platform_at, AT_EXECFN, execfn_at, AT_NULL, 0]);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let start = (sp - bytes.len() as u64) & !15;
    t.mm.poke(start, &bytes)?;
    // /proc/pid/auxv: the auxiliary vector just laid out, AT_NULL included.
    let aux_words = 2 * aux.len() + 8;
    t.shared.view().auxv = bytes[bytes.len() - 8 * aux_words..].to_vec();
    Ok(start)
}

fn getrandom(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        match crate::host::getrandom(&mut buf[done..], 0) {
            Ok(n) => done += n,
            Err(e) if e == Errno::EINTR => continue,
            Err(_) => break,
        }
    }
}

/// Resolves the container's entrypoint like runc (a name without `/` is
/// searched in the process's PATH) and loads it. Errors carry the exit status
/// a runtime reports: 127 when the program does not exist, 126 when it
/// cannot be run.
pub fn exec_first(t: &mut Task, args: &[String], env: &[String]) -> Result<(), BootError> {
    let Some(arg0) = args.first() else {
        return Err(BootError::Exec { msg: "process.args must not be empty".into(), code: 1 });
    };
    let exe = find_executable(t, arg0, env)?;
    let argv: Vec<Vec<u8>> = args.iter().map(|a| a.clone().into_bytes()).collect();
    let envp: Vec<Vec<u8>> = env.iter().map(|e| e.clone().into_bytes()).collect();
    load(t, &exe.1, exe.0.as_bytes(), &argv, &envp).map_err(|e| exec_error(&exe.0, e))
}

fn exec_error(path: &str, e: Errno) -> BootError {
    let code = if e == Errno::ENOENT { 127 } else { 126 };
    let what = if e == Errno::ENOEXEC { "exec format error".to_string() } else { e.description().to_lowercase() };
    BootError::Exec { msg: format!("exec: \"{path}\": {what}"), code }
}

fn find_executable(t: &Task, arg0: &str, env: &[String]) -> Result<(String, Arc<Dentry>), BootError> {
    if arg0.contains('/') {
        let d = t.lookup(syscalls::flags::AT_FDCWD, arg0.as_bytes(), true).map_err(|e| exec_error(arg0, e))?;
        return Ok((arg0.to_string(), d));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = format!("{}/{}", dir.trim_end_matches('/'), arg0);
        match t.lookup(syscalls::flags::AT_FDCWD, cand.as_bytes(), true) {
            Ok(d) if d.is_regular() && d.attr().mode & 0o111 != 0 => return Ok((cand, d)),
            Ok(d) => tracing::debug!(target: "sentry::loader", "{cand}: mode {:o}", d.attr().mode),
            Err(e) => tracing::debug!(target: "sentry::loader", "{cand}: {e}"),
        }
    }
    Err(BootError::Exec { msg: format!("exec: \"{arg0}\": executable file not found in $PATH"), code: 127 })
}

/// Deepest chain of `#!` interpreters followed.
const MAX_INTERP_DEPTH: u32 = 4;

/// What `#!` in the first line of a script names.
fn parse_shebang(head: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), Errno> {
    let line_end = head.iter().position(|b| *b == b'\n').ok_or(Errno::ENOEXEC)?;
    let line = &head[2..line_end];
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !is_space(b)).ok_or(Errno::ENOEXEC)?;
    let line = &line[start..];
    let end = line.iter().position(is_space).unwrap_or(line.len());
    let interp = line[..end].to_vec();
    let rest = &line[end..];
    let arg = rest.iter().position(|b| !is_space(b)).map(|s| {
        let r = &rest[s..];
        let e = r.iter().rposition(|b| !is_space(b)).map_or(0, |e| e + 1);
        r[..e].to_vec()
    });
    Ok((interp, arg))
}

/// `execve(2)`: replaces the task's program. Errors before the point of no
/// return leave the task as it was; a failure while loading the new image
/// kills it.
pub fn execve(
    t: &mut Task,
    dirfd: i32,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    follow: bool,
) -> Result<(), Errno> {
    let (mut path, mut exe) = if path.is_empty() {
        // execveat(fd, "", AT_EMPTY_PATH): the file the fd refers to, named
        // as Linux names it.
        let f = t.fds.get(dirfd)?;
        let d = f.dentry.clone().ok_or(Errno::EACCES)?;
        (format!("/dev/fd/{dirfd}").into_bytes(), d)
    } else {
        (path.to_vec(), t.lookup(dirfd, path, follow)?)
    };
    let mut depth = 0;
    loop {
        let fd = open_exec(t, &exe)?;
        let mut head = [0u8; 256];
        let n = pread_exact(&fd, &mut head, 0)?;
        if n >= 2 && &head[..2] == b"#!" {
            depth += 1;
            if depth > MAX_INTERP_DEPTH {
                return Err(Errno::ELOOP);
            }
            let (interp, arg) = parse_shebang(&head[..n])?;
            let mut new_argv = vec![interp.clone()];
            new_argv.extend(arg);
            new_argv.push(path.clone());
            new_argv.extend(argv.into_iter().skip(1));
            argv = new_argv;
            exe = t.lookup(syscalls::flags::AT_FDCWD, &interp, true)?;
            path = interp;
            continue;
        }
        parse(&fd)?;
        break;
    }
    // The point of no return: the other threads go, then the address space.
    t.de_thread()?;
    t.release_memory_hooks();
    let space = t.kernel.platform.new_address_space().map_err(|e| {
        tracing::error!(target: "sentry::loader", "creating an address space for exec: {e}");
        Errno::ENOMEM
    })?;
    let max = t.kernel.platform.max_user_address();
    t.mm = TaskMemory::new(MemoryManager::new(t.kernel.memory.clone(), max), space);
    t.shared.set_stub(t.mm.host_ids());
    t.release_vfork_parent();
    // The new image's credentials: set-id bits and capabilities.
    let a = exe.attr();
    let setid = !exe.nosuid();
    let set_uid = (setid && a.mode & mode::S_ISUID != 0).then_some(a.uid);
    let set_gid = (setid && a.mode & mode::S_ISGID != 0 && a.mode & 0o010 != 0).then_some(a.gid);
    t.secure_exec = t.creds.exec(set_uid, set_gid);
    if let Err(e) = load(t, &exe, &path, &argv, &envp) {
        tracing::info!(target: "sentry::loader", "exec of {:?} failed after the point of no return: {e:?}",
            String::from_utf8_lossy(&path));
        t.exit = Some(crate::task::ExitStatus::Signaled(syscalls::flags::signal::SIGKILL));
        return Ok(());
    }
    let closed = t.fds.close_on_exec();
    t.flush_closed(closed);
    t.group().execs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    t.group().delete_timers();
    {
        let mut actions = t.group().actions();
        for a in actions.iter_mut() {
            if a.handler != syscalls::flags::sa::SIG_IGN {
                *a = Default::default();
            }
        }
    }
    t.signals.altstack =
        syscalls::structs::SigStack { ss_flags: syscalls::flags::signal::SS_DISABLE, ..Default::default() };
    let _ = t.set_ctx_fp_state(&platform::initial_fp_state());
    Ok(())
}
