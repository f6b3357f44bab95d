/* Micro-benchmarks of the system-call path, run identically inside a Linux
 * guest and inside Cloister by the benchmark driver (issue 6). Built static
 * from this source by the driver: `gcc -O2 -static -o syscall_bench
 * syscall_bench.c`.
 *
 * Prints one line per figure: `NAME ns_per_op=X iterations=N`. Each figure
 * is the median of 5 timed batches, timed with CLOCK_MONOTONIC. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*op_fn)(void);
static int zero_fd = -1;
static const char *open_path = "/etc/passwd";

/* syscall(SYS_getpid) bypasses any caching in libc. */
static void op_getpid(void) { syscall(SYS_getpid); }
static void op_read_zero(void) {
    char c;
    if (read(zero_fd, &c, 1) != 1) abort();
}
static void op_open_close(void) {
    int fd = open(open_path, O_RDONLY);
    if (fd < 0) abort();
    close(fd);
}

static void bench(const char *name, op_fn op, long n) {
    double batches[5];
    for (int i = 0; i < 1000; i++) op(); /* warm up */
    for (int b = 0; b < 5; b++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) op();
        batches[b] = (now_ns() - t0) / n;
    }
    qsort(batches, 5, sizeof batches[0], cmp);
    printf("%s ns_per_op=%.1f iterations=%ld\n", name, batches[2], n);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (argc > 2) open_path = argv[2];
    zero_fd = open("/dev/zero", O_RDONLY);
    if (zero_fd < 0) {
        perror("open /dev/zero");
        return 1;
    }
    bench("getpid", op_getpid, n);
    bench("read_dev_zero_1B", op_read_zero, n);
    bench("open_close", op_open_close, n / 4);
    return 0;
}
