/* Memory an ended process leaves behind: forks N children that look
 * themselves up in /proc and exit, reaps them, and reports how much free
 * memory (sysinfo) each one cost, after a warm-up round of the same. Run in
 * Cloister by tests/tests/processes.rs; then the same for threads that
 * are created and joined. An ended process or thread must give back what
 * it held (it kept ~3 KiB: the process and thread structures the
 * run loop's frame held, and its /proc/<pid> entry). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

static long free_bytes(void) {
    struct sysinfo si;
    sysinfo(&si);
    return (long)si.freeram * si.mem_unit;
}

static void round_of(int n) {
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            char b[256];
            if (readlink("/proc/self/exe", b, sizeof b) <= 0) _exit(1);
            _exit(0);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("child %d failed\n", i);
            exit(1);
        }
    }
}

static void *nothing(void *arg) { return arg; }

static void threads_of(int n) {
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0) {
            printf("thread %d failed\n", i);
            exit(1);
        }
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 400;
    round_of(n);
    long before = free_bytes();
    round_of(n);
    long lost = (before - free_bytes()) / n;
    printf("%d processes; each left under 1 KiB behind: %s\n", n, lost < 1024 ? "yes" : "no");
    if (lost >= 1024) printf("lost %ld bytes per process\n", lost);
    threads_of(n);
    before = free_bytes();
    threads_of(n);
    lost = (before - free_bytes()) / n;
    printf("%d threads; each left under 1 KiB behind: %s\n", n, lost < 1024 ? "yes" : "no");
    if (lost >= 1024) printf("lost %ld bytes per thread\n", lost);
    return 0;
}
