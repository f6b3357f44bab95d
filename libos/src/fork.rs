//! `fork`: a new process from the caller — the Linux personality's half.
//!
//! What only the kernel can do (copy an address space, create a thread in
//! it, bind a thread to its process) sits behind the narrow
//! [`ProcessHost`] trait; [`fork`] does the rest in order: the process
//! limit (`EAGAIN`), the kernel's copy, the child's state
//! ([`Process::fork`]), its entry in the [`ProcessTable`](crate::ptable::ProcessTable),
//! and only then lets the child run. Host tests drive it over a mock host.

use alloc::sync::Arc;

use crate::error::{Errno, Result};
use crate::process::Process;

/// What the kernel does for `fork`.
pub trait ProcessHost {
    /// Copies the calling thread's address space and creates a thread in
    /// the copy that resumes like the caller, with 0 as the syscall's
    /// result. It must not run before [`ProcessHost::attach`]. Returns its
    /// tid, which becomes the child's pid. `EAGAIN`/`ENOMEM` when the
    /// thread or the memory cannot be had (nothing is left behind).
    fn fork_thread(&self) -> Result<u32>;

    /// Binds thread `tid` to `process` and lets it run.
    fn attach(&self, tid: u32, process: Arc<Process>);
}

/// Forks the process `parent` from its thread `parent_tid`: returns the
/// child's pid.
pub fn fork(parent: &Process, parent_tid: u32, host: &dyn ProcessHost) -> Result<u32> {
    parent.processes.check_room()?;
    let pid = host.fork_thread()?;
    let child = Arc::new(parent.fork(pid, parent_tid));
    // The room was checked and nothing ran since (the kernel does not
    // preempt kernel code): this cannot fail, but an error is still
    // reported rather than ignored.
    parent
        .processes
        .add_child(parent.pid, child.clone())
        .map_err(|_| Errno::EAGAIN)?;
    host.attach(pid, child);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptable::{ExitStatus, WaitFor};
    use crate::syscall::testing::Sys;
    use alloc::vec::Vec;
    use spin::Mutex;

    /// Hands out tids from 100 and records attachments.
    #[derive(Default)]
    struct MockHost {
        next: Mutex<u32>,
        attached: Mutex<Vec<(u32, Arc<Process>)>>,
        fail: bool,
    }

    impl ProcessHost for MockHost {
        fn fork_thread(&self) -> Result<u32> {
            if self.fail {
                return Err(Errno::ENOMEM.into());
            }
            let mut n = self.next.lock();
            *n += 1;
            Ok(100 + *n)
        }
        fn attach(&self, tid: u32, process: Arc<Process>) {
            self.attached.lock().push((tid, process));
        }
    }

    fn with_init() -> Sys {
        let s = Sys::new(0x10000, 4096);
        s.p.processes.insert_init(s.p.clone());
        s
    }

    #[test]
    fn a_child_shares_file_descriptions_and_is_in_the_table() {
        let s = with_init();
        let host = MockHost::default();
        let r = s.call("pipe2", &[0x10000, 0]);
        assert_eq!(r, 0);
        s.p.set_umask(0o077);
        let pid = fork(&s.p, 1, &host).unwrap();
        assert_eq!(pid, 101);
        let (tid, child) = host.attached.lock()[0].clone();
        assert_eq!((tid, child.pid), (101, 101));
        assert_eq!(child.umask(), 0o077);
        // The same description behind the pipe's fds in both.
        let a = s.p.fds.lock().get(0).unwrap();
        let b = child.fds.lock().get(0).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(s.p.processes.parent_of(101), 1);
        assert!(s.p.processes.process(101).is_some());
        assert_eq!(s.p.processes.try_wait(1, WaitFor::Any, true).unwrap(), None);
    }

    #[test]
    fn only_shared_anonymous_areas_are_shared_at_fork() {
        let s = with_init();
        const PRW: u64 = 3;
        const SHARED_ANON: u64 = 0x01 | 0x20;
        const PRIVATE_ANON: u64 = 0x02 | 0x20;
        let a = s.call("mmap", &[0, 8192, PRW, SHARED_ANON, u64::MAX, 0]) as u64;
        let b = s.call("mmap", &[0, 4096, PRW, PRIVATE_ANON, u64::MAX, 0]) as u64;
        assert!(a < 1 << 47 && b < 1 << 47);
        let expected = alloc::vec![a..a + 8192];
        assert_eq!(s.p.shared_anonymous_ranges(), expected);
        let child = s.p.fork(2, 1);
        assert_eq!(child.shared_anonymous_ranges(), expected);
    }

    #[test]
    fn the_process_limit_gives_eagain_before_the_kernel_is_asked() {
        let s = with_init();
        s.p.processes.set_limit(2);
        let host = MockHost::default();
        fork(&s.p, 1, &host).unwrap();
        let e = fork(&s.p, 1, &host).unwrap_err();
        assert_eq!(e.errno(), Errno::EAGAIN);
        assert_eq!(host.attached.lock().len(), 1);
        // Reaping the child makes room again.
        s.p.processes.exit(101, ExitStatus::Exited(0));
        assert!(
            s.p.processes
                .try_wait(1, WaitFor::Pid(101), true)
                .unwrap()
                .is_some()
        );
        assert!(fork(&s.p, 1, &host).is_ok());
    }

    #[test]
    fn a_kernel_failure_leaves_no_child() {
        let s = with_init();
        let host = MockHost {
            fail: true,
            ..MockHost::default()
        };
        assert_eq!(fork(&s.p, 1, &host).unwrap_err().errno(), Errno::ENOMEM);
        assert_eq!(s.p.processes.count(), 1);
    }
}
