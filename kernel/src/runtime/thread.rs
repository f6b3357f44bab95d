//! Threads of a linked application: [`spawn`], [`JoinHandle::join`],
//! [`sleep`] and [`yield_now`].
//!
//! An application thread is a scheduler thread ([`crate::task`]) that never
//! enters user mode: it runs its closure on its own guarded kernel stack
//! (the scheduler's, 64 KiB today; keep large buffers on the heap).
//! Scheduling is cooperative: kernel code is never preempted, so a thread
//! runs until it blocks (a socket, a join), sleeps or yields. A thread that
//! computes for long should call [`yield_now`] now and then.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use spin::Mutex;

use super::{Errno, Result};
use crate::arch::fpu::FpuState;
use crate::arch::user::UserContext;
use crate::task::{self, Thread};

type Body = Box<dyn FnOnce() + Send>;

/// The closures of threads created and not yet started, by tid.
static BODIES: Mutex<BTreeMap<u32, Body>> = Mutex::new(BTreeMap::new());

/// What every application thread runs on its kernel stack.
fn thread_entry(me: Arc<Thread>) -> ! {
    let body = BODIES.lock().remove(&me.tid);
    // No reference to the thread may stay on its stack once it is dead.
    drop(me);
    match body {
        Some(body) => body(),
        None => log::error!("runtime: a thread started without its closure"),
    }
    // Never the last thread: the first one ends the run when it returns.
    task::exit_current()
}

/// Creates a runnable thread that will run `body`.
fn spawn_body(body: Body) -> Result<u32> {
    let fpu = FpuState::initial().ok_or(Errno::ENOMEM)?;
    let tid = task::spawn(UserContext::default(), fpu, 0).map_err(|e| match e {
        task::SpawnError::Limit => Errno::EAGAIN,
        task::SpawnError::NoMemory => Errno::ENOMEM,
    })?;
    // The thread cannot run before this: kernel code is not preempted and
    // nothing between its creation and here yields.
    BODIES.lock().insert(tid, body);
    Ok(tid)
}

/// The application's first thread: `main`, then the end of the run.
pub(super) fn spawn_first(main: fn() -> u8) -> Result<u32> {
    task::set_entry(thread_entry);
    spawn_body(Box::new(move || super::exit(main())))
}

/// The end of a thread: its result, once it is there.
struct Packet<T> {
    done: Arc<AtomicBool>,
    value: Mutex<Option<T>>,
}

/// Owns a spawned thread's result ([`JoinHandle::join`]). Dropping it
/// detaches the thread.
#[derive(Debug)]
pub struct JoinHandle<T> {
    tid: u32,
    packet: Arc<Packet<T>>,
}

impl<T> core::fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> JoinHandle<T> {
    /// The thread's id.
    pub fn id(&self) -> u32 {
        self.tid
    }

    /// Whether the thread has returned.
    pub fn is_finished(&self) -> bool {
        self.packet.done.load(Ordering::Acquire)
    }

    /// Waits for the thread to return and takes its result.
    pub fn join(self) -> T {
        let done = self.packet.done.clone();
        let flag = done.clone();
        task::block_on_flag(flag, &mut || done.load(Ordering::Acquire), None);
        match self.packet.value.lock().take() {
            Some(value) => value,
            None => unreachable!("a thread's flag is set after its result"),
        }
    }
}

/// Starts a thread running `f`. `EAGAIN` past the thread limit, `ENOMEM`
/// without memory for its stack.
pub fn spawn<F, T>(f: F) -> Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let packet = Arc::new(Packet {
        done: Arc::new(AtomicBool::new(false)),
        value: Mutex::new(None),
    });
    let theirs = packet.clone();
    let tid = spawn_body(Box::new(move || {
        let value = f();
        *theirs.value.lock() = Some(value);
        theirs.done.store(true, Ordering::Release);
    }))?;
    Ok(JoinHandle { tid, packet })
}

/// Lets the other runnable threads run; returns whether one did.
pub fn yield_now() -> bool {
    task::yield_now()
}

/// Blocks the calling thread for at least `duration` (other threads run;
/// the CPU halts when none can).
pub fn sleep(duration: Duration) {
    let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    let deadline = crate::time::now_ns().saturating_add(ns);
    while crate::time::now_ns() < deadline {
        task::block_until(&mut || false, Some(deadline));
    }
}

/// The calling thread's id.
pub fn current_id() -> u32 {
    task::current().map_or(0, |t| t.tid)
}
