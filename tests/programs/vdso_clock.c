/* The vDSO (libos::vdso): glibc finds it through AT_SYSINFO_EHDR, its
 * clocks agree with the system calls' (a vDSO read, then the system call,
 * then the vDSO again, are in order, for the monotonic and the realtime
 * clock, 200,000 times), gettimeofday and time agree with clock_gettime,
 * and /proc/self/maps names [vdso] and [vvar]. Prints verdicts only, so
 * a native run prints the same. `bench` as argv[1] prints ns per call
 * instead (vDSO and system call). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long ns(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

static long long sys_clock(clockid_t id) {
    struct timespec t;
    syscall(SYS_clock_gettime, id, &t);
    return ns(&t);
}

static long long vdso_clock(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return ns(&t);
}

static int in_order(clockid_t id, int rounds) {
    for (int i = 0; i < rounds; i++) {
        long long a = vdso_clock(id), b = sys_clock(id), c = vdso_clock(id);
        if (!(a <= b && b <= c)) {
            fprintf(stderr, "clock %d out of order: %lld %lld %lld\n", id, a, b, c);
            return 0;
        }
    }
    return 1;
}

static int maps_name(const char *what) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, what)) found = 1;
    if (f) fclose(f);
    return found;
}

static double per_call(long long (*f)(clockid_t), int n) {
    long long t0 = sys_clock(CLOCK_MONOTONIC);
    for (int i = 0; i < n; i++) f(CLOCK_MONOTONIC);
    return (double)(sys_clock(CLOCK_MONOTONIC) - t0) / n;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        int n = argc > 2 ? atoi(argv[2]) : 1000000;
        printf("clock_gettime vdso %.1f ns, syscall %.1f ns\n", per_call(vdso_clock, n),
               per_call(sys_clock, n));
        return 0;
    }
    printf("vdso: %s\n", getauxval(AT_SYSINFO_EHDR) ? "yes" : "no");
    printf("monotonic in order: %s\n", in_order(CLOCK_MONOTONIC, 100000) ? "yes" : "no");
    printf("realtime in order: %s\n", in_order(CLOCK_REALTIME, 100000) ? "yes" : "no");
    struct timeval tv;
    struct timespec ts;
    gettimeofday(&tv, NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    long long tv_ns = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
    printf("gettimeofday agrees: %s\n", tv_ns <= ns(&ts) && ns(&ts) - tv_ns < 1000000000LL ? "yes" : "no");
    time_t t = time(NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("time agrees: %s\n", t <= ts.tv_sec && ts.tv_sec - t <= 1 ? "yes" : "no");
    printf("maps name them: %s\n", maps_name("[vdso]") && maps_name("[vvar]") ? "yes" : "no");
    return 0;
}
