/* A CPU-bound hash loop in N threads (issue 15): each thread runs ITERS
 * rounds of a 64-bit mixing function from its own seed; no system calls
 * in the loop but a `getcpu` every 2^20 rounds, recording which CPUs the
 * thread ran on. Prints the combined hash (the same for any number of
 * CPUs) and, on stderr, the CPUs seen and the wall time in ms — the
 * scaling benchmark of docs/PERFORMANCE.md ("SMP").
 * Usage: smp_hash THREADS ITERS */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

static long iters;
static uint64_t results[MAX_THREADS];
static unsigned long cpus_seen[MAX_THREADS];

static unsigned current_cpu(void) {
    unsigned cpu = 0;
    syscall(SYS_getcpu, &cpu, NULL, NULL);
    return cpu;
}

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t h = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    for (long i = 0; i < iters; i++) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h += (uint64_t)i;
        if ((i & 0xfffff) == 0)
            cpus_seen[id] |= 1ul << (current_cpu() % 64);
    }
    cpus_seen[id] |= 1ul << (current_cpu() % 64);
    results[id] = h;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: smp_hash THREADS ITERS\n");
        return 2;
    }
    long n = atol(argv[1]);
    iters = atol(argv[2]);
    if (n < 1 || n > MAX_THREADS || iters < 1) {
        fprintf(stderr, "smp_hash: 1 to %d threads, ITERS > 0\n", MAX_THREADS);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t[MAX_THREADS];
    for (long i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            perror("pthread_create");
            return 2;
        }
    uint64_t all = 0;
    unsigned long seen = 0;
    for (long i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        all ^= results[i] * (uint64_t)(2 * i + 1);
        seen |= cpus_seen[i];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("threads=%ld iters=%ld hash=%016llx\n", n, iters, (unsigned long long)all);
    fprintf(stderr, "cpus_seen=%d ms=%ld\n", __builtin_popcountl(seen), ms);
    return 0;
}
