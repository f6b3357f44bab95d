/* Traps as Linux x86-64 raises them (issue 11):
 *   int3          — unhandled: killed by SIGTRAP (status 133)
 *   int3-handled  — a SIGTRAP handler runs and execution goes on after it
 *   int80         — `int $0x80`: Cloister has no 32-bit system-call layer,
 *                   so as Linux with IA32 emulation off: SIGSEGV (139) */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_trap(int sig) { caught = sig; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "int3";
    setvbuf(stdout, NULL, _IONBF, 0);
    /* The signal mask is inherited across exec: a test harness that runs
     * us with SIGTRAP blocked would make the native run differ (a blocked
     * synchronous SIGTRAP kills). Start from an empty mask, as a shell. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (strcmp(mode, "int3-handled") == 0) {
        signal(SIGTRAP, on_trap);
        __asm__ volatile("int3");
        printf("after int3: handler saw signal %d\n", (int)caught);
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
