/* sysfuzz: random system calls from a seed, to find what a program can do
 * to the kernel under it (`cloister fuzz`, docs/TESTING.md).
 *
 * Usage: sysfuzz SEED CALLS
 *
 * Each call takes a random number (0..460, sometimes far outside) and six
 * arguments from edge-case pools: 0, -1, small integers, huge lengths,
 * kernel addresses, unaligned and unmapped pointers, pointers into a
 * scratch arena, the fds the program holds, flags with every bit set. A
 * 10 ms interval timer breaks calls that block. The program keeps itself
 * alive: it never calls what would end or replace it (exit, execve, clone,
 * rt_sigreturn, arch_prctl, signal-handler changes), memory calls only
 * touch the arena, and a fault inside a call's aftermath jumps back to the
 * loop. Everything is deterministic from SEED, so `cloister run --trace`
 * of the same seed shows the call that brought a kernel down.
 *
 * Output: "sysfuzz seed S: N calls" at the end, on a private dup of stdout. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <fcntl.h>

#define ARENA_BYTES (1 << 20)
#define OUT_FD 200

static uint64_t rng;
static char *arena;
static int fds[8];
static sigjmp_buf escape;

static uint64_t next(void) {
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static uint64_t pick(const uint64_t *v, size_t n) { return v[next() % n]; }

static uint64_t arena_ptr(void) {
    uint64_t off = next() % ARENA_BYTES;
    if (next() % 2) {
        off &= ~(uint64_t)7;
    }
    return (uint64_t)(uintptr_t)arena + off;
}

static uint64_t arg(void) {
    static const uint64_t edges[] = {
        0, 1, 2, 3, 4, 7, 8, 16, 64, 255, 4095, 4096, 4097, 65536, 1 << 20,
        0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, (uint64_t)-1,
        (uint64_t)-2, (uint64_t)-4096, 0x7fffffffffffULL, 0x800000000000ULL,
        0xffff800000000000ULL, 0xffffffff80000000ULL, 0xffffffffff600000ULL,
        0x1000, 0x10000, 0xdead0000ULL, 0x8000000000000000ULL,
    };
    switch (next() % 8) {
    case 0:
    case 1:
        return pick(edges, sizeof edges / sizeof *edges);
    case 2:
    case 3:
        return arena_ptr();
    case 4:
        return (uint64_t)fds[next() % 8];
    case 5:
        return next() % 64;
    case 6:
        return next();
    default:
        return next() % 4096;
    }
}

/* Calls that would end, replace or unmoor the fuzzer itself. */
static int forbidden(long nr) {
    switch (nr) {
    case SYS_exit:
    case SYS_exit_group:
    case SYS_execve:
    case SYS_execveat:
    case SYS_clone:
    case SYS_clone3:
    case SYS_fork:
    case SYS_vfork:
    case SYS_rt_sigreturn:
    case SYS_arch_prctl:
    case SYS_rt_sigaction:
    case SYS_rt_sigprocmask:
    case SYS_sigaltstack:
    case SYS_kill:
    case SYS_tkill:
    case SYS_tgkill:
    case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo:
    case SYS_set_tid_address:
    case SYS_setitimer:
    case SYS_alarm:
    case SYS_timer_create:
    case SYS_seccomp:
    case SYS_prctl:
    case SYS_setrlimit:
    case SYS_prlimit64:
    case SYS_personality:
        return 1;
    default:
        return 0;
    }
}

/* Memory calls: addresses confined to the arena. */
static int memory_call(long nr) {
    switch (nr) {
    case SYS_mmap:
    case SYS_munmap:
    case SYS_mprotect:
    case SYS_mremap:
    case SYS_madvise:
    case SYS_brk:
    case SYS_msync:
    case SYS_mlock:
    case SYS_munlock:
    case SYS_mincore:
    case SYS_pkey_mprotect:
    case SYS_remap_file_pages:
    case SYS_shmat:
    case SYS_shmdt:
        return 1;
    default:
        return 0;
    }
}

static void on_fault(int sig) {
    (void)sig;
    siglongjmp(escape, 1);
}

static void on_alarm(int sig) { (void)sig; }

static void setup(void) {
    arena = mmap((void *)0x3000000000ULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (arena == MAP_FAILED) {
        perror("arena");
        exit(2);
    }
    int p[2] = {-1, -1};
    (void)pipe(p);
    fds[0] = 0;
    fds[1] = 1;
    fds[2] = p[0];
    fds[3] = p[1];
    fds[4] = open("/tmp/sysfuzz.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
    fds[5] = (int)syscall(SYS_eventfd2, 0, 0);
    fds[6] = (int)syscall(SYS_socket, 2, 1, 0);
    fds[7] = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        sigaction(faults[i], &sa, NULL);
    }
    sa.sa_handler = on_alarm;
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls end with EINTR */
    int quiet[] = {SIGALRM, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGHUP, SIGINT,
                   SIGTERM, SIGQUIT, SIGURG, SIGIO, SIGXFSZ, SIGXCPU, SIGVTALRM,
                   SIGPROF, SIGWINCH, SIGTTIN, SIGTTOU, SIGTSTP};
    for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++) {
        sigaction(quiet[i], &sa, NULL);
    }
    struct itimerval t = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &t, NULL);
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
    long calls = argc > 2 ? atol(argv[2]) : 10000;
    if (dup2(1, OUT_FD) < 0) {
        return 2;
    }
    rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    setup();
    volatile long done = 0;
    sigsetjmp(escape, 1);
    while (done < calls) {
        long nr = (long)(next() % 460);
        if (next() % 64 == 0) {
            nr = (long)next();
        }
        done++;
        if (forbidden(nr)) {
            continue;
        }
        uint64_t a[6];
        for (int i = 0; i < 6; i++) {
            a[i] = arg();
        }
        if (memory_call(nr)) {
            a[0] = arena_ptr() & ~(uint64_t)4095;
            a[1] %= ARENA_BYTES;
            if (nr == SYS_mmap) {
                a[3] = (a[3] & ~(uint64_t)0x3) | 0x10 | 0x2; /* MAP_FIXED|PRIVATE */
            }
            if (nr == SYS_mremap) {
                a[2] %= ARENA_BYTES;
                a[3] &= ~(uint64_t)2; /* not MREMAP_FIXED */
            }
        }
        syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    char line[96];
    int n = snprintf(line, sizeof line, "sysfuzz seed %llu: %ld calls\n",
                     (unsigned long long)seed, (long)done);
    (void)!write(OUT_FD, line, (size_t)n);
    return 0;
}
