/* sysfuzz: random system calls from a seed, to find what a program can do
 * to the kernel under it (`cloister fuzz`, docs/TESTING.md).
 *
 * Usage: sysfuzz SEED CALLS [FROM]
 *
 * With FROM, each call from number FROM on is announced before it is made
 * ("sysfuzz seed S call N: nr A0 A1 A2 A3 A4 A5", in hex), so a replay of
 * a seed that brought the kernel down names the call that did it.
 *
 * Each call takes a random number (0..460, sometimes far outside) and six
 * arguments from edge-case pools: 0, -1, small integers, huge lengths,
 * kernel and non-canonical addresses, unaligned and unmapped pointers,
 * pointers into a scratch arena (some at prepared objects: paths, iovecs,
 * socket addresses, a buffer ending at the arena's last byte), the fds the
 * program holds, flags with every bit set. A 10 ms interval timer breaks
 * calls that block.
 *
 * The program keeps itself alive: it never calls what would end or replace
 * it (exit, execve, fork, rt_sigreturn); memory calls only touch the arena,
 * which is mapped afresh every 4096 calls; signals sent are ones it
 * handles; and what a call may change of its own set-up (signal handlers
 * and mask, timers, resource limits, the FS base, the personality) is put
 * back right after the call; the fd it reports on is never closed or
 * replaced. A fault in a call's aftermath jumps back to
 * the loop. Calls are made with a raw `syscall` instruction (no errno, no
 * TLS). Everything is deterministic from SEED, so `cloister run --trace`
 * of the same seed shows the call that brought a kernel down.
 *
 * It refuses to run outside Cloister (no /.cloister/argv): random calls
 * such as kill(-1, SIGUSR1) are not for a host.
 *
 * Output, on a private dup of stdout: "sysfuzz seed S: progress N" every
 * 10,000 calls, and "sysfuzz seed S: N calls" at the end. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define ARENA ((uint64_t)0x3000000000ULL)
#define ARENA_BYTES ((uint64_t)1 << 20)
#define OUT_FD 200
#define NFDS 16
#define PROGRESS_EVERY 10000
#define REFRESH_EVERY 4096

static uint64_t rng;
static uint64_t seed;
static int fds[NFDS];
static uint64_t objects[32];
static size_t nobjects;
static sigjmp_buf escape;
static uint64_t saved_fs;
static struct rlimit saved_limits[16];

static uint64_t next(void) {
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static uint64_t pick(const uint64_t *v, size_t n) { return v[next() % n]; }

static long raw(long nr, uint64_t a, uint64_t b, uint64_t c, uint64_t d,
                uint64_t e, uint64_t f) {
    register uint64_t r10 __asm__("r10") = d;
    register uint64_t r8 __asm__("r8") = e;
    register uint64_t r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                       "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void announce(long n, long nr, const uint64_t *a) {
    char line[256];
    int len = snprintf(line, sizeof line,
                       "sysfuzz seed %llu call %ld: %ld %#llx %#llx %#llx %#llx "
                       "%#llx %#llx\n",
                       (unsigned long long)seed, n, nr, (unsigned long long)a[0],
                       (unsigned long long)a[1], (unsigned long long)a[2],
                       (unsigned long long)a[3], (unsigned long long)a[4],
                       (unsigned long long)a[5]);
    (void)raw(SYS_write, OUT_FD, (uint64_t)(uintptr_t)line, (uint64_t)len, 0,
              0, 0);
}

static void say(const char *what, long n) {
    char line[96];
    int len = snprintf(line, sizeof line, "sysfuzz seed %llu: %s%ld%s\n",
                       (unsigned long long)seed, what, n,
                       what[0] == 'p' ? "" : " calls");
    (void)raw(SYS_write, OUT_FD, (uint64_t)(uintptr_t)line, (uint64_t)len, 0,
              0, 0);
}

static uint64_t arena_ptr(void) {
    uint64_t off = next() % ARENA_BYTES;
    if (next() % 2) {
        off &= ~(uint64_t)7;
    }
    return ARENA + off;
}

/* Maps the arena afresh and lays out objects a call may want: paths,
 * iovecs, socket addresses, words, and random bytes everywhere else. */
static void refresh_arena(void) {
    void *p = mmap((void *)ARENA, ARENA_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        return;
    }
    uint64_t *words = p;
    for (size_t i = 0; i < 4096; i++) {
        words[i] = next();
    }
    static const char *const paths[] = {
        "/tmp/fz.a", "/tmp/fz.d/b", "/tmp/fz.d", "/", ".", "..", "",
        "/proc/self/maps", "/dev/null", "/tmp/sysfuzz.file", "/tmp",
        "/proc/self/fd/3", "/dev/zero", "/etc/passwd",
    };
    char *at = (char *)p + 64 * 1024;
    nobjects = 0;
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        strcpy(at, paths[i]);
        objects[nobjects++] = (uint64_t)(uintptr_t)at;
        at += 256;
    }
    /* A path of 5000 bytes (beyond PATH_MAX) and a 300-byte component. */
    memcpy(at, "/tmp/", 5);
    memset(at + 5, 'x', 4995);
    at[5000] = 0;
    objects[nobjects++] = (uint64_t)(uintptr_t)at;
    at[305] = 0;
    at += 8192;
    /* iovecs over the arena (and one reaching past it). */
    struct iovec *iov = (struct iovec *)at;
    for (int i = 0; i < 8; i++) {
        iov[i].iov_base = (char *)p + 128 * 1024 + 4096 * i;
        iov[i].iov_len = (size_t)(next() % 8192);
    }
    iov[7].iov_base = (char *)p + ARENA_BYTES - 100;
    objects[nobjects++] = (uint64_t)(uintptr_t)iov;
    at += 256;
    struct sockaddr_in *sin = (struct sockaddr_in *)at;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)(1 + next() % 3));
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    objects[nobjects++] = (uint64_t)(uintptr_t)sin;
    at += 256;
    /* Small words (counts, lengths, fds) and the arena's last bytes. */
    for (int i = 0; i < 32; i++) {
        ((uint64_t *)at)[i] = next() % 64;
    }
    objects[nobjects++] = (uint64_t)(uintptr_t)at;
    objects[nobjects++] = ARENA + ARENA_BYTES - 1 - next() % 16;
}

static uint64_t arg(void) {
    static const uint64_t edges[] = {
        0, 1, 2, 3, 4, 7, 8, 16, 64, 255, 4095, 4096, 4097, 65536, 1 << 20,
        0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, (uint64_t)-1,
        (uint64_t)-2, (uint64_t)-4096, 0x7fffffffffffULL, 0x7ffffffff000ULL,
        0x800000000000ULL, 0xffff800000000000ULL, 0xffffffff80000000ULL,
        0xffffffffff600000ULL, 0x1000, 0x10000, 0x100000, 0x400000,
        0xdead0000ULL, 0x8000000000000000ULL, 0x7fffffffffffffffULL,
        ARENA + ARENA_BYTES, ARENA - 4096, ARENA + 1, ARENA + ARENA_BYTES - 8,
    };
    switch (next() % 9) {
    case 0:
    case 1:
        return pick(edges, sizeof edges / sizeof *edges);
    case 2:
        return arena_ptr();
    case 3:
        return nobjects ? objects[next() % nobjects] : arena_ptr();
    case 4:
        return (uint64_t)fds[next() % NFDS];
    case 5:
        return next() % 64;
    case 6:
        return next();
    case 7:
        return (uint64_t)-(int64_t)(next() % 4096 + 1);
    default:
        return next() % 4096;
    }
}

/* Calls that would end or replace the fuzzer itself. */
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
    case SYS_seccomp:
    case SYS_timer_create:
        return 1;
    default:
        return 0;
    }
}

/* Memory calls: the address and length stay inside the arena. */
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
    case SYS_shmdt:
    case SYS_mlock2:
    case SYS_process_madvise:
        return 1;
    default:
        return 0;
    }
}

/* A signal the fuzzer survives (0 only checks). */
static uint64_t safe_signal(void) {
    static const uint64_t sigs[] = {0, SIGALRM, SIGUSR1, SIGUSR2, SIGCHLD,
                                    SIGURG, SIGWINCH, SIGPIPE, SIGIO, SIGSEGV,
                                    SIGTRAP, SIGPROF, SIGHUP};
    return pick(sigs, sizeof sigs / sizeof *sigs);
}

/* A signal mask in the arena must not block SIGALRM, or the call could
 * wait for ever. */
static void let_alarm_through(uint64_t mask) {
    if (mask >= ARENA && mask + 8 <= ARENA + ARENA_BYTES) {
        *(volatile uint64_t *)(uintptr_t)mask &= ~((uint64_t)1 << (SIGALRM - 1));
    }
}

static void confine(long nr, uint64_t *a) {
    if (memory_call(nr)) {
        a[0] = arena_ptr() & ~(uint64_t)4095;
        uint64_t room = ARENA + ARENA_BYTES - a[0];
        a[1] %= room + 1;
        if (nr == SYS_mmap) {
            a[3] = (a[3] & ~(uint64_t)0x3) | 0x10 | 0x2; /* FIXED|PRIVATE */
            a[3] &= ~(uint64_t)0x100000; /* not MAP_FIXED_NOREPLACE */
        }
        if (nr == SYS_mremap) {
            a[2] %= room + 1;
            a[3] &= ~(uint64_t)(1 | 2); /* stays where it is */
        }
        return;
    }
    switch (nr) {
    case SYS_close:
        if ((uint32_t)a[0] == OUT_FD) {
            a[0] = OUT_FD + 1;
        }
        break;
    case SYS_dup2:
    case SYS_dup3:
        if ((uint32_t)a[1] == OUT_FD) {
            a[1] = OUT_FD + 1;
        }
        break;
    case SYS_close_range:
        /* Its fds are unsigned ints; the report's fd stays open. */
        if ((uint32_t)a[0] <= OUT_FD && (uint32_t)a[1] >= OUT_FD) {
            if ((uint32_t)a[0] < OUT_FD) {
                a[1] = OUT_FD - 1;
            } else {
                a[0] = OUT_FD + 1;
            }
        }
        break;
    case SYS_kill:
    case SYS_tkill:
    case SYS_rt_sigqueueinfo:
    case SYS_pidfd_send_signal:
        a[1] = safe_signal();
        break;
    case SYS_tgkill:
    case SYS_rt_tgsigqueueinfo:
        a[2] = safe_signal();
        break;
    case SYS_shmat:
        a[1] = arena_ptr() & ~(uint64_t)4095;
        break;
    case SYS_prctl:
        if (a[0] == 22 /* PR_SET_SECCOMP */ || a[0] == 35 /* PR_SET_MM */) {
            a[0] = 16; /* PR_GET_NAME */
        }
        break;
    case SYS_rt_sigsuspend:
        let_alarm_through(a[0]);
        break;
    case SYS_ppoll:
        let_alarm_through(a[3]);
        break;
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
        let_alarm_through(a[4]);
        break;
    case SYS_pselect6:
        if (a[5] >= ARENA && a[5] + 16 <= ARENA + ARENA_BYTES) {
            let_alarm_through(*(volatile uint64_t *)(uintptr_t)a[5]);
        }
        break;
    default:
        break;
    }
}

static void on_fault(int sig) {
    (void)sig;
    siglongjmp(escape, 1);
}

static void on_quiet(int sig) { (void)sig; }

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        sigaction(faults[i], &sa, NULL);
    }
    sa.sa_handler = on_quiet;
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls end with EINTR */
    for (int sig = 1; sig < 65; sig++) {
        int fault = 0;
        for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
            fault |= faults[i] == sig;
        }
        if (!fault && sig != SIGKILL && sig != SIGSTOP && (sig < 32 || sig > 33)) {
            sigaction(sig, &sa, NULL);
        }
    }
}

static void arm_timer(void) {
    struct itimerval t = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &t, NULL);
    setitimer(ITIMER_VIRTUAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
}

/* Puts back what call `nr` may have changed of the fuzzer's set-up. */
static void restore(long nr) {
    uint64_t empty = 0;
    switch (nr) {
    case SYS_arch_prctl:
        (void)raw(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, saved_fs, 0, 0, 0, 0);
        (void)raw(SYS_arch_prctl, 0x1012 /* ARCH_SET_CPUID */, 1, 0, 0, 0, 0);
        break;
    case SYS_rt_sigaction:
        install_handlers();
        break;
    case SYS_rt_sigprocmask:
        (void)raw(SYS_rt_sigprocmask, SIG_SETMASK, (uint64_t)(uintptr_t)&empty,
                  0, 8, 0, 0);
        break;
    case SYS_sigaltstack: {
        stack_t off = {.ss_flags = SS_DISABLE};
        (void)raw(SYS_sigaltstack, (uint64_t)(uintptr_t)&off, 0, 0, 0, 0, 0);
        break;
    }
    case SYS_setitimer:
    case SYS_alarm:
        arm_timer();
        break;
    case SYS_setrlimit:
    case SYS_prlimit64:
        for (int r = 0; r < 16; r++) {
            (void)raw(SYS_prlimit64, 0, (uint64_t)r,
                      (uint64_t)(uintptr_t)&saved_limits[r], 0, 0, 0);
        }
        break;
    case SYS_prctl:
        (void)raw(SYS_prctl, 26 /* PR_SET_TSC */, 1, 0, 0, 0, 0);
        break;
    case SYS_personality:
        (void)raw(SYS_personality, 0, 0, 0, 0, 0, 0);
        break;
    default:
        break;
    }
}

static void setup(void) {
    refresh_arena();
    int p[2] = {-1, -1}, u[2] = {-1, -1};
    (void)pipe(p);
    (void)socketpair(AF_UNIX, SOCK_STREAM, 0, u);
    fds[0] = 0;
    fds[1] = 1;
    fds[2] = p[0];
    fds[3] = p[1];
    fds[4] = open("/tmp/sysfuzz.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
    fds[5] = (int)syscall(SYS_eventfd2, 0, 0);
    fds[6] = socket(AF_INET, SOCK_STREAM, 0);
    fds[7] = -1;
    fds[8] = socket(AF_INET, SOCK_DGRAM, 0);
    fds[9] = u[0];
    fds[10] = u[1];
    fds[11] = (int)syscall(SYS_epoll_create1, 0);
    fds[12] = open("/tmp", O_RDONLY | O_DIRECTORY);
    fds[13] = open("/dev/null", O_RDWR);
    fds[14] = socket(AF_INET, SOCK_STREAM, 0);
    fds[15] = AT_FDCWD;
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(2),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fds[14], (struct sockaddr *)&sin, sizeof sin) == 0) {
        (void)listen(fds[14], 4);
    }
    (void)raw(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */,
              (uint64_t)(uintptr_t)&saved_fs, 0, 0, 0, 0);
    for (int r = 0; r < 16; r++) {
        getrlimit(r, &saved_limits[r]);
    }
    install_handlers();
    arm_timer();
}

int main(int argc, char **argv) {
    /* Random calls with kill(-1, ...) among them are for a guest only. */
    if (access("/.cloister/argv", F_OK) != 0) {
        fprintf(stderr, "sysfuzz: runs only inside Cloister (no /.cloister)\n");
        return 2;
    }
    seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
    long calls = argc > 2 ? atol(argv[2]) : 10000;
    long announce_from = argc > 3 ? atol(argv[3]) : -1;
    if (dup2(1, OUT_FD) < 0) {
        return 2;
    }
    rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    setup();
    volatile long done = 0;
    sigsetjmp(escape, 1);
    while (done < calls) {
        if (done % REFRESH_EVERY == 0) {
            refresh_arena();
        }
        long nr = (long)(next() % 460);
        if (next() % 64 == 0) {
            nr = (long)next();
        }
        done++;
        if (done % PROGRESS_EVERY == 0) {
            say("progress ", done);
        }
        if (forbidden(nr)) {
            continue;
        }
        uint64_t a[6];
        for (int i = 0; i < 6; i++) {
            a[i] = arg();
        }
        confine(nr, a);
        if (announce_from >= 0 && done >= announce_from) {
            announce(done, nr, a);
        }
        (void)raw(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        restore(nr);
    }
    say("", done);
    return 0;
}
