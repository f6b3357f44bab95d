//! In-guest tests of the application processors. With `-smp 1` they check
//! that the firmware lists one CPU and nothing was started; run them with
//! several (`CLOISTER_CPUS=4 cargo cloister ktest smp`) to see every AP
//! come up, report its id, run work on its own stack (with an unmapped
//! guard page below it) and halt.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::{MAX_CPUS, cpu, cpu_count, cpu_index, found_cpus, run_on, wait_for};
use crate::ktest;
use crate::mm::{PAGE_BYTES, paging};

ktest!(
    fn every_cpu_in_the_firmware_table_is_online() {
        let list = found_cpus();
        assert_eq!(cpu_count(), list.len().min(MAX_CPUS), "{list:?}");
        assert_eq!(cpu_index(), 0, "the tests run on the boot CPU");
        for index in 0..cpu_count() {
            let c = cpu(index).expect("a slot for every CPU");
            assert!(c.online.load(Ordering::Acquire), "CPU {index} offline");
            assert!(
                list.ids().contains(&c.apic_id),
                "CPU {index}: {}",
                c.apic_id
            );
            if index > 0 {
                assert_eq!(c.apic_id_seen.load(Ordering::Relaxed), c.apic_id);
                // Its stack is mapped, the page below it is not (the guard).
                let (bottom, top) = (c.stacks.bottom, c.stacks.top);
                assert!(top > bottom);
                assert!(paging::access_of(bottom).is_some_and(|a| a.writable));
                assert!(paging::access_of(top - PAGE_BYTES).is_some());
                assert_eq!(
                    paging::access_of(bottom - PAGE_BYTES),
                    None,
                    "CPU {index}'s guard"
                );
            }
        }
        crate::kprintln!("smp: {} CPUs online", cpu_count());
    }
);

ktest!(
    fn each_ap_runs_work_on_its_own_stack_and_reports_its_id() {
        for index in 1..cpu_count() {
            let seen = Arc::new(spin::Mutex::new(None));
            let out = seen.clone();
            let ticket = run_on(index, move || {
                let probe = 0u8;
                let sp = core::ptr::addr_of!(probe) as u64;
                *out.lock() = Some((cpu_index(), crate::arch::apic::id(), sp));
            })
            .expect("queue work");
            wait_for(index, ticket);
            let (ran_on, apic_id, sp) = seen.lock().take().expect("the work ran");
            let c = cpu(index).expect("slot");
            assert_eq!(ran_on, index);
            assert_eq!(apic_id, c.apic_id);
            assert!(
                (c.stacks.bottom..c.stacks.top).contains(&sp),
                "CPU {index} ran on {sp:#x}, its stack is {:#x}..{:#x}",
                c.stacks.bottom,
                c.stacks.top
            );
            crate::kprintln!("smp: CPU {index} (APIC id {apic_id}) ran on its stack at {sp:#x}");
        }
    }
);

ktest!(
    fn idle_aps_halt_again_after_work() {
        for index in 1..cpu_count() {
            let c = cpu(index).expect("slot");
            let before = c.halts.load(Ordering::Relaxed);
            assert!(before > 0, "CPU {index} never halted");
            let ticket = run_on(index, || {}).expect("queue work");
            wait_for(index, ticket);
            // It halts right after the work (no timer wakes an AP); the
            // bound only stops a broken kernel from hanging the suite.
            let deadline = crate::time::now_ns() + 10_000_000_000;
            while c.halts.load(Ordering::Relaxed) == before {
                assert!(crate::time::now_ns() < deadline, "CPU {index} did not halt");
                core::hint::spin_loop();
            }
        }
        assert_eq!(run_on(0, || {}), Err(super::RunOnError::NoSuchCpu));
        assert_eq!(
            run_on(cpu_count(), || {}),
            Err(super::RunOnError::NoSuchCpu)
        );
    }
);
