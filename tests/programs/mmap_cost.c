/* The cost of a lazy mapping by its size (issue 11): for each size from
 * 4 KiB to 16 TiB, REPS rounds of mmap (private, writable, MAP_NORESERVE),
 * a one-byte store in the middle, and munmap, each step timed with
 * CLOCK_MONOTONIC. Prints the median and the range in microseconds.
 * Usage: mmap_cost [REPS] (default 21) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, long long *ns, int n) {
    qsort(ns, n, sizeof *ns, cmp);
    printf("  %-6s median %7.1f us (%.1f-%.1f)", what, ns[n / 2] / 1e3, ns[0] / 1e3, ns[n - 1] / 1e3);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 21;
    if (reps < 1 || reps > 1000) {
        return 2;
    }
    static const struct { size_t bytes; const char *name; } sizes[] = {
        {(size_t)4 << 10, "4 KiB"}, {(size_t)16 << 20, "16 MiB"}, {(size_t)1 << 30, "1 GiB"},
        {(size_t)1 << 40, "1 TiB"}, {(size_t)16 << 40, "16 TiB"},
    };
    long long *map = calloc(reps, sizeof *map), *touch = calloc(reps, sizeof *touch),
              *unmap = calloc(reps, sizeof *unmap);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (int r = 0; r < reps; r++) {
            long long t0 = now_ns();
            char *p = mmap(NULL, sizes[i].bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            long long t1 = now_ns();
            if (p == MAP_FAILED) {
                perror(sizes[i].name);
                return 1;
            }
            p[sizes[i].bytes / 2] = 1;
            long long t2 = now_ns();
            munmap(p, sizes[i].bytes);
            map[r] = t1 - t0;
            touch[r] = t2 - t1;
            unmap[r] = now_ns() - t2;
        }
        printf("%-6s:", sizes[i].name);
        report("mmap", map, reps);
        report("touch", touch, reps);
        report("munmap", unmap, reps);
        printf("\n");
    }
    return 0;
}
