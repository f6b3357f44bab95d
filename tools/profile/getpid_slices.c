/*
 * getpid in 12 slices of 300,000 calls, one line per slice with its ns
 * per call: a pure in-guest CPU loop (no I/O), to see how the speed at
 * which QEMU runs the same guest code changes within one run
 * (docs/PERFORMANCE.md, "Where the remaining spread comes from").
 *
 *   gcc -O2 -static tools/profile/getpid_slices.c -o /tmp/getpid_slices
 *   cargo cloister run --no-learn -- /tmp/getpid_slices
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    for (int slice = 0; slice < 12; slice++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < 300000; i++) syscall(SYS_getpid);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
        printf("slice %2d: %.1f ns per getpid\n", slice, ns / 300000.0);
        fflush(stdout);
    }
    return 0;
}
