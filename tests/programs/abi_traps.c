/* Traps and argument checks as Linux x86-64 does them (issue 11):
 *   int3          — unhandled: killed by SIGTRAP (status 133)
 *   int3-handled  — a SA_SIGINFO SIGTRAP handler runs (si_code SI_KERNEL,
 *                   si_addr 0, RIP just past the int3) and execution goes on
 *   int80         — `int $0x80`: Cloister has no 32-bit system-call layer,
 *                   so as Linux with IA32 emulation off: SIGSEGV (139)
 *   int80-handled — the same with a SIGSEGV handler: si_code SI_KERNEL,
 *                   si_addr 0 (a general-protection fault, not a page fault)
 *   rlimit        — setrlimit(RLIMIT_NOFILE, <unmapped or kernel pointer>)
 *                   fails with EFAULT and changes nothing: getrlimit reads
 *                   the old limit and open(O_CREAT) still works. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t caught, code;
static volatile uintptr_t addr, rip;

static void on_signal(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    caught = sig;
    code = si->si_code;
    addr = (uintptr_t)si->si_addr;
    rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
}

/* After int $0x80 (2 bytes) faults, the handler moves RIP past it. */
static void on_segv(int sig, siginfo_t *si, void *uc_) {
    on_signal(sig, si, uc_);
    ((ucontext_t *)uc_)->uc_mcontext.gregs[REG_RIP] += 2;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, NULL);
}

static int rlimit_checks(void) {
    struct rlimit before, after;
    getrlimit(RLIMIT_NOFILE, &before);
    const unsigned long bad[] = {0xdead0000UL, 0xffff800000000000UL,
                                 0xffffffff80000000UL, 1UL, 0UL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        long r = syscall(SYS_setrlimit, RLIMIT_NOFILE, bad[i]);
        printf("setrlimit(NOFILE, %#lx): %ld %s\n", bad[i], r,
               r < 0 ? strerror(errno) : "");
        r = syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, bad[i], NULL);
        printf("prlimit64(0, NOFILE, %#lx, NULL): %ld %s\n", bad[i], r,
               r < 0 ? strerror(errno) : "");
    }
    /* Readable garbage: rejected with Linux's errno, nothing changed. */
    const struct rlimit junk[] = {
        {5000, 2000},                           /* soft above hard: EINVAL */
        {0x4141414141414141, 0x4141414141414141}, /* above nr_open: EPERM */
        {RLIM_INFINITY, RLIM_INFINITY},          /* likewise */
    };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        long r = syscall(SYS_setrlimit, RLIMIT_NOFILE, &junk[i]);
        printf("setrlimit(NOFILE, {%#lx, %#lx}): %ld %s\n",
               (unsigned long)junk[i].rlim_cur, (unsigned long)junk[i].rlim_max,
               r, r < 0 ? strerror(errno) : "");
    }
    getrlimit(RLIMIT_NOFILE, &after);
    printf("limit unchanged: %s\n",
           before.rlim_cur == after.rlim_cur && before.rlim_max == after.rlim_max
               ? "yes"
               : "no");
    char path[] = "/tmp/abi_traps_rlimit_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        printf("open(O_CREAT) after: %s\n", strerror(errno));
        return 1;
    }
    int fd2 = open(path, O_RDWR | O_CREAT, 0600);
    printf("open(O_CREAT) after: %s\n", fd2 >= 0 ? "ok" : strerror(errno));
    if (fd2 >= 0) {
        close(fd2);
    }
    close(fd);
    unlink(path);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "int3";
    setvbuf(stdout, NULL, _IONBF, 0);
    /* The signal mask is inherited across exec: a test harness that runs
     * us with SIGTRAP blocked would make the native run differ (a blocked
     * synchronous SIGTRAP kills). Start from an empty mask, as a shell. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (strcmp(mode, "rlimit") == 0) {
        return rlimit_checks();
    }
    if (strcmp(mode, "int3-handled") == 0) {
        extern char after_int3[];
        handle(SIGTRAP, on_signal);
        __asm__ volatile("int3\n.globl after_int3\nafter_int3:");
        printf("after int3: signal %d, si_code %d, si_addr %#lx, RIP %s\n",
               (int)caught, (int)code, (unsigned long)addr,
               rip == (uintptr_t)after_int3 ? "after the int3" : "elsewhere");
        return 0;
    }
    if (strcmp(mode, "int80-handled") == 0) {
        extern char at_int80[];
        long ret = 20;
        handle(SIGSEGV, on_segv);
        __asm__ volatile(".globl at_int80\nat_int80: int $0x80"
                         : "+a"(ret)
                         :
                         : "memory");
        printf("after int 0x80: signal %d, si_code %d, si_addr %#lx, RIP %s\n",
               (int)caught, (int)code, (unsigned long)addr,
               rip == (uintptr_t)at_int80 ? "at the int" : "elsewhere");
        return 0;
    }
    if (strcmp(mode, "int80") == 0) {
        long ret;
        printf("int 0x80\n");
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        printf("returned %ld\n", ret);
        return 0;
    }
    printf("int3\n");
    __asm__ volatile("int3");
    printf("survived\n");
    return 0;
}
