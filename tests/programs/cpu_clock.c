/* CPU-time clocks measure CPU time, not wall time (issue 11): they move
 * with work and stand still while the program sleeps; getrusage and times
 * agree with the process clock. Prints only yes/no verdicts so native and
 * Cloister runs compare byte for byte. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

static double secs(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
    double w0 = secs(CLOCK_MONOTONIC), p0 = secs(CLOCK_PROCESS_CPUTIME_ID),
           t0 = secs(CLOCK_THREAD_CPUTIME_ID);
    volatile unsigned long x = 0;
    while (secs(CLOCK_MONOTONIC) - w0 < 0.2) {
        for (int i = 0; i < 100000; i++) x += i;
    }
    double p1 = secs(CLOCK_PROCESS_CPUTIME_ID), t1 = secs(CLOCK_THREAD_CPUTIME_ID);
    printf("cpu clocks move with work: %s\n", p1 > p0 && t1 > t0 ? "yes" : "no");
    double w2 = secs(CLOCK_MONOTONIC);
    struct timespec nap = {0, 400000000};
    nanosleep(&nap, NULL);
    double sleep_wall = secs(CLOCK_MONOTONIC) - w2;
    double sleep_cpu = secs(CLOCK_PROCESS_CPUTIME_ID) - p1;
    printf("cpu clock still while sleeping: %s\n", sleep_cpu < sleep_wall / 2 ? "yes" : "no");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double ru_cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    double now_cpu = secs(CLOCK_PROCESS_CPUTIME_ID);
    printf("getrusage agrees: %s\n", ru_cpu <= now_cpu + 0.01 && ru_cpu >= p1 - 0.01 ? "yes" : "no");
    double total_wall = secs(CLOCK_MONOTONIC) - w0;
    printf("cpu time below wall time: %s\n", now_cpu - p0 < total_wall ? "yes" : "no");
    return 0;
}
