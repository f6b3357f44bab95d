//! Typed user-space pointers, validated once at the syscall boundary.
//!
//! Handlers never touch user memory directly: they wrap the raw register
//! value in a [`UserPtr<T>`], [`UserSliceRead`] or [`UserSliceWrite`] and
//! copy through a [`UserMemory`] implementation. The kernel implements it
//! with exception-fixup copies (a fault returns `EFAULT`, never crashes the
//! LibOS); host tests use `platform::mock::MockPlatform` over a `Vec`.
//! Modelled on redox's `src/syscall/usercopy.rs`.

use alloc::vec::Vec;
use core::marker::PhantomData;

use crate::elf::{PAGE_SIZE, USER_SPACE_END};
use crate::error::{Errno, Result};
use crate::fallible::TryVec;
use crate::return_errno;

/// Copies between the LibOS and user memory. Both methods fail with
/// `EFAULT` if any byte of the range is not mapped with the needed access.
pub trait UserMemory {
    /// Copies `buf.len()` bytes from user address `addr`.
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<()>;
    /// Copies `data` to user address `addr`.
    fn write_user(&self, addr: u64, data: &[u8]) -> Result<()>;

    /// Copies user memory at `addr` into `buf` *without* asking the LibOS
    /// to populate a page (Linux's `copy_from_user_nofault`): the copy
    /// stops at the first page that is not present or not readable and
    /// returns the bytes copied before it. Only faults the platform
    /// resolves on its own (a lazy zero page, copy-on-write) are taken,
    /// so a caller may hold a file's lock: the LibOS's fault path
    /// ([`crate::mm::handle_page_fault`]) takes the `vm` lock and then
    /// the file's, and would deadlock. See [`UserMemory::fault_in`].
    fn read_user_nofault(&self, addr: u64, buf: &mut [u8]) -> usize;

    /// Copies `data` to user memory at `addr` without asking the LibOS to
    /// populate a page, likewise; returns the bytes copied.
    fn write_user_nofault(&self, addr: u64, data: &[u8]) -> usize;

    /// Makes the user page holding `addr` present for `access`, through
    /// the LibOS's fault path if needed (Linux's `fault_in_readable` /
    /// `fault_in_writeable`), after a `*_nofault` copy stopped there; the
    /// caller holds no file lock. `EFAULT` if the page cannot be had (not
    /// mapped, or mapped without that access). The default touches the
    /// page: a one-byte read, or for a write a compare-exchange of the
    /// aligned word that stores nothing new.
    fn fault_in(&self, addr: u64, access: crate::mm::FaultAccess) -> Result<()> {
        if access == crate::mm::FaultAccess::Write {
            self.cmpxchg_u32(addr & !3, 0, 0).map(|_| ())
        } else {
            self.read_user(addr, &mut [0u8; 1])
        }
    }

    /// Replaces the aligned 32-bit word at `addr` with `new` if it holds
    /// `old`, atomically against user code on every CPU; returns the value
    /// it held. The default reads and writes: atomic only where no user
    /// code runs meanwhile (one CPU, the mock).
    fn cmpxchg_u32(&self, addr: u64, old: u32, new: u32) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_user(addr, &mut b)?;
        let held = u32::from_le_bytes(b);
        if held == old {
            self.write_user(addr, &new.to_le_bytes())?;
        }
        Ok(held)
    }
}

/// Checks that `addr .. addr + len` lies in the user half without overflow.
pub fn check_user_range(addr: u64, len: usize) -> Result<()> {
    match addr.checked_add(len as u64) {
        Some(end) if end <= USER_SPACE_END => Ok(()),
        _ => return_errno!(Errno::EFAULT),
    }
}

/// Reads a NUL-terminated string of at most `max_len` bytes (without the
/// NUL) from `addr`: `ENAMETOOLONG` if no NUL is found in time. Reads
/// page by page so it never touches a page past the terminator.
pub fn read_cstring(mem: &dyn UserMemory, addr: u64, max_len: usize) -> Result<Vec<u8>> {
    if addr == 0 {
        return_errno!(Errno::EFAULT);
    }
    let mut out = Vec::new();
    let mut cur = addr;
    let mut chunk = [0u8; 256];
    loop {
        let to_page_end = (PAGE_SIZE - cur % PAGE_SIZE) as usize;
        let chunk_len = to_page_end.min(max_len + 1 - out.len()).min(chunk.len());
        check_user_range(cur, chunk_len)?;
        let chunk = &mut chunk[..chunk_len];
        mem.read_user(cur, chunk)?;
        if let Some(nul) = chunk.iter().position(|&b| b == 0) {
            out.try_extend_from_slice(&chunk[..nul])?;
            return Ok(out);
        }
        out.try_extend_from_slice(chunk)?;
        if out.len() > max_len {
            return_errno!(Errno::ENAMETOOLONG);
        }
        cur += chunk_len as u64;
    }
}

/// Plain data that can be copied to and from user memory as little-endian
/// bytes.
pub trait Pod: Copy {
    /// Size in bytes.
    const SIZE: usize;
    /// Decodes from exactly `SIZE` bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// Encodes into exactly `SIZE` bytes.
    fn to_le(&self, out: &mut [u8]);
}

macro_rules! impl_pod {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
            fn to_le(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
impl_pod!(u8, u16, u32, u64, i32, i64, usize);

/// A pointer to a `T` in user memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPtr<T> {
    addr: u64,
    _marker: PhantomData<T>,
}

impl<T: Pod> UserPtr<T> {
    /// Wraps a raw user address (not yet checked; every access checks).
    pub const fn new(addr: u64) -> Self {
        Self {
            addr,
            _marker: PhantomData,
        }
    }

    /// The raw address.
    pub const fn addr(&self) -> u64 {
        self.addr
    }

    /// Whether the address is 0.
    pub const fn is_null(&self) -> bool {
        self.addr == 0
    }

    /// The `index`-th element after this one (`EFAULT` on overflow).
    pub fn offset(&self, index: usize) -> Result<Self> {
        let bytes = index.checked_mul(T::SIZE).ok_or(Errno::EFAULT)?;
        let addr = self.addr.checked_add(bytes as u64).ok_or(Errno::EFAULT)?;
        Ok(Self::new(addr))
    }

    /// Copies the value in.
    pub fn read(&self, mem: &dyn UserMemory) -> Result<T> {
        if self.is_null() {
            return_errno!(Errno::EFAULT);
        }
        check_user_range(self.addr, T::SIZE)?;
        let mut buf = [0u8; 16];
        let buf = &mut buf[..T::SIZE];
        mem.read_user(self.addr, buf)?;
        Ok(T::from_le(buf))
    }

    /// Copies `value` out.
    pub fn write(&self, mem: &dyn UserMemory, value: T) -> Result<()> {
        if self.is_null() {
            return_errno!(Errno::EFAULT);
        }
        check_user_range(self.addr, T::SIZE)?;
        let mut buf = [0u8; 16];
        let buf = &mut buf[..T::SIZE];
        value.to_le(buf);
        mem.write_user(self.addr, buf)
    }
}

/// A user buffer the LibOS may only read (e.g. `write(2)`'s buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSliceRead {
    addr: u64,
    len: usize,
}

impl UserSliceRead {
    /// Checks the range lies in user space (`EFAULT` otherwise).
    pub fn new(addr: u64, len: usize) -> Result<Self> {
        if len > 0 && addr == 0 {
            return_errno!(Errno::EFAULT);
        }
        check_user_range(addr, len)?;
        Ok(Self { addr, len })
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the whole buffer in (`ENOMEM` if a kernel buffer of that size
    /// cannot be had: the length comes from the program).
    pub fn read_to_vec(&self, mem: &dyn UserMemory) -> Result<Vec<u8>> {
        let mut v = crate::fallible::zeroed(self.len)?;
        mem.read_user(self.addr, &mut v)?;
        Ok(v)
    }
}

/// A user buffer the LibOS may only write (e.g. `read(2)`'s buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSliceWrite {
    addr: u64,
    len: usize,
}

impl UserSliceWrite {
    /// Checks the range lies in user space (`EFAULT` otherwise).
    pub fn new(addr: u64, len: usize) -> Result<Self> {
        if len > 0 && addr == 0 {
            return_errno!(Errno::EFAULT);
        }
        check_user_range(addr, len)?;
        Ok(Self { addr, len })
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` to the start of the buffer; `EINVAL` if it is longer
    /// than the buffer. Returns the bytes written.
    pub fn write(&self, mem: &dyn UserMemory, data: &[u8]) -> Result<usize> {
        if data.len() > self.len {
            return_errno!(Errno::EINVAL);
        }
        mem.write_user(self.addr, data)?;
        Ok(data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::AddressSpace;
    use crate::platform::mock::MockPlatform;

    #[test]
    fn typed_pointers_round_trip_and_fault() {
        let p = MockPlatform::new();
        let base = p.map(0x1000, 0x2000);
        let ptr = UserPtr::<u64>::new(base + 8);
        ptr.write(&p, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(ptr.read(&p).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(UserPtr::<u32>::new(base + 8).read(&p).unwrap(), 0x5566_7788);
        assert_eq!(ptr.offset(1).unwrap().addr(), base + 16);
        let err = |r: Result<u64>| r.unwrap_err().errno();
        assert_eq!(err(UserPtr::<u64>::new(0).read(&p)), Errno::EFAULT);
        assert_eq!(
            err(UserPtr::<u64>::new(base + 0x2000 - 4).read(&p)),
            Errno::EFAULT
        );
        assert_eq!(
            err(UserPtr::<u64>::new(u64::MAX - 3).read(&p)),
            Errno::EFAULT
        );
        assert!(UserPtr::<u64>::new(u64::MAX).offset(1).is_err());
    }

    #[test]
    fn slices_check_ranges() {
        let p = MockPlatform::new();
        let base = p.map(0x1000, 0x1000);
        let w = UserSliceWrite::new(base, 4).unwrap();
        assert_eq!(w.write(&p, b"abcd").unwrap(), 4);
        assert_eq!(w.write(&p, b"abcde").unwrap_err().errno(), Errno::EINVAL);
        let r = UserSliceRead::new(base, 4).unwrap();
        assert_eq!(r.read_to_vec(&p).unwrap(), b"abcd");
        assert!(UserSliceRead::new(0, 0).is_ok());
        assert_eq!(UserSliceRead::new(0, 1).unwrap_err().errno(), Errno::EFAULT);
        assert_eq!(
            UserSliceRead::new(USER_SPACE_END - 2, 4)
                .unwrap_err()
                .errno(),
            Errno::EFAULT
        );
        let unmapped = UserSliceRead::new(base + 0x1000, 4).unwrap();
        assert_eq!(unmapped.read_to_vec(&p).unwrap_err().errno(), Errno::EFAULT);
    }

    #[test]
    fn nofault_copies_stop_where_faulting_ones_ask_the_fault_handler() {
        use alloc::sync::Arc;
        let p = Arc::new(MockPlatform::new());
        let base = p.map(0x10_0000, 0x1000);
        let lazy = base + 0x1000;
        // Without a handler, a missing page stops both kinds of copy.
        assert_eq!(p.write_user_nofault(base + 0xff0, &[7; 32]), 16);
        assert_eq!(p.read_user_nofault(base + 0xff0, &mut [0; 32]), 16);
        assert_eq!(p.read_user_nofault(0, &mut [0; 4]), 0);
        assert_eq!(p.read_user_nofault(u64::MAX - 1, &mut [0; 4]), 0);
        assert_eq!(
            p.write_user(base + 0xff0, &[7; 32]).unwrap_err().errno(),
            Errno::EFAULT
        );
        // A handler that maps the page the copy asks for, like the LibOS's
        // fault path: the faulting copies call it, the nofault ones never.
        let weak = Arc::downgrade(&p);
        p.set_fault_handler(Arc::new(move |addr, _| match weak.upgrade() {
            Some(p) if (lazy..lazy + 0x1000).contains(&addr) && p.page_perms(addr).is_none() => {
                p.map(lazy, 0x1000);
                Ok(())
            }
            _ => Err(Errno::EFAULT.into()),
        }));
        assert_eq!(p.write_user_nofault(base + 0xff0, &[7; 32]), 16);
        assert_eq!(p.faults_handled(), 0);
        p.fault_in(lazy + 5, crate::mm::FaultAccess::Write).unwrap();
        assert_eq!(p.faults_handled(), 1);
        assert_eq!(p.write_user_nofault(base + 0xff0, &[7; 32]), 32);
        let mut b = [0u8; 32];
        p.read_user(base + 0xff0, &mut b).unwrap();
        assert_eq!(b, [7; 32]);
        // Past the page the handler gives: EFAULT, and fault_in says so.
        assert!(p.write_user(lazy + 0xff0, &[1; 32]).is_err());
        assert!(
            p.fault_in(lazy + 0x1000, crate::mm::FaultAccess::Read)
                .is_err()
        );
        // A read-only page is present but cannot be faulted in for a write.
        p.protect(
            lazy,
            0x1000,
            crate::elf::Perms {
                read: true,
                write: false,
                execute: false,
            },
        )
        .unwrap();
        assert_eq!(p.write_user_nofault(lazy, &[1; 4]), 0);
        assert!(p.fault_in(lazy, crate::mm::FaultAccess::Write).is_err());
        assert!(p.fault_in(lazy, crate::mm::FaultAccess::Read).is_ok());
    }

    #[test]
    fn cstrings() {
        let p = MockPlatform::new();
        let base = p.map(0x1000, 0x1000);
        // A string ending exactly at the end of the mapping.
        p.write_user(base + 0x1000 - 4, b"abc\0").unwrap();
        assert_eq!(read_cstring(&p, base + 0x1000 - 4, 100).unwrap(), b"abc");
        // Running off the mapping without a NUL faults.
        p.write_user(base + 0x1000 - 3, b"xyz").unwrap();
        assert_eq!(
            read_cstring(&p, base + 0x1000 - 3, 100)
                .unwrap_err()
                .errno(),
            Errno::EFAULT
        );
        p.write_user(base, &[b'a'; 300]).unwrap();
        assert_eq!(
            read_cstring(&p, base, 10).unwrap_err().errno(),
            Errno::ENAMETOOLONG
        );
        assert_eq!(read_cstring(&p, 0, 10).unwrap_err().errno(), Errno::EFAULT);
    }
}
