/*
 * Native loops run on the host next to QEMU, to see whether the host's
 * own speed follows the spells in which QEMU runs guest code slowly
 * (docs/PERFORMANCE.md, "Where the remaining spread comes from"). Each
 * mode prints the milliseconds its fixed loop took:
 *
 *   alu      2·10^8 rounds of xorshift (integer work only);
 *   mem N    N rounds of random read-modify-writes over a 4 MiB table;
 *   ind      3·10^7 indirect calls through a table of 16 functions;
 *   sample N GAP   until SIGTERM: N rounds of `mem`'s loop every GAP ms,
 *            then the mean milliseconds per sample and the sample count.
 *
 *   gcc -O2 tools/profile/native_probes.c -o /tmp/native_probes
 *   taskset -c 1 /tmp/native_probes alu
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static uint64_t xorshift(uint64_t x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

#define TABLE (1u << 19) /* 4 MiB of u64 */
static uint64_t *table;

static uint64_t mem_loop(long rounds, uint64_t x) {
    for (long i = 0; i < rounds; i++) {
        x = xorshift(x);
        uint64_t *p = &table[x & (TABLE - 1)];
        *p += x;
        x += *p >> 3;
    }
    return x;
}

typedef uint64_t (*fn)(uint64_t);
#define F(n) __attribute__((noinline)) static uint64_t f##n(uint64_t x) { return x * (2 * n + 1) + n; }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14) F(15)
static fn calls[16] = {f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15};

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s alu | mem N | ind | sample N GAP_MS\n", argv[0]);
        return 2;
    }
    table = malloc(TABLE * sizeof *table);
    for (uint64_t i = 0; i < TABLE; i++) table[i] = i * 0x9E3779B97F4A7C15ull;
    uint64_t x = 1;
    double t0 = now_ms();
    if (strcmp(argv[1], "alu") == 0) {
        for (long i = 0; i < 200000000; i++) x = xorshift(x);
    } else if (strcmp(argv[1], "mem") == 0 && argc > 2) {
        x = mem_loop(atol(argv[2]), x);
    } else if (strcmp(argv[1], "ind") == 0) {
        uint64_t s = 88172645463325252ull;
        for (long i = 0; i < 30000000; i++) {
            s = xorshift(s);
            x = calls[s & 15](x);
        }
    } else if (strcmp(argv[1], "sample") == 0 && argc > 3) {
        long rounds = atol(argv[2]);
        int gap_ms = atoi(argv[3]);
        double sum = 0;
        long samples = 0;
        signal(SIGTERM, on_term);
        while (!stop) {
            double a = now_ms();
            x = mem_loop(rounds, x);
            sum += now_ms() - a;
            samples++;
            usleep(gap_ms * 1000);
        }
        printf("%.4f %ld %lu\n", samples ? sum / samples : 0.0, samples, (unsigned long)(x & 1));
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    printf("%.1f %lu\n", now_ms() - t0, (unsigned long)(x & 1));
    return 0;
}
