/* Memory a program controls, and what Linux answers (issue 11):
 *   malloc    — 1 MiB blocks until malloc returns NULL; prints how many
 *   touch     — 1 MiB blocks, each written, until memory runs out: the
 *               out-of-memory kill (SIGKILL, status 137), not SIGSEGV
 *   huge      — a 1 TiB MAP_NORESERVE mapping, a page of it touched, then
 *               deep recursion on the stack: works as natively
 *   populate  — MAP_POPULATE of 1 GiB: refused (ENOMEM) when memory
 *               cannot back it, never a pretend success
 *   oom       — 1 GiB MAP_NORESERVE (no commit check), all of it written:
 *               the out-of-memory kill (SIGKILL, status 137), not SIGSEGV
 *   oom-read  — the same, written by read() from /dev/zero: the kernel's
 *               copy meets the exhaustion, still the OOM kill
 *   mmap      — 16 MiB private writable mappings until mmap fails
 *   sbrk      — 1 MiB sbrk steps until sbrk fails */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

static int depth(int n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    return n == 0 ? pad[0] : depth(n - 1) + pad[0];
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "malloc";
    if (strcmp(mode, "malloc") == 0) {
        long mib = 0;
        while (malloc(1 << 20) != NULL) {
            mib++;
        }
        printf("malloc returned NULL after %ld MiB\n", mib);
        return mib > 0 ? 0 : 1;
    }
    if (strcmp(mode, "touch") == 0) {
        long mib = 0;
        for (;;) {
            char *p = malloc(1 << 20);
            if (p == NULL) {
                printf("malloc returned NULL after %ld MiB touched\n", mib);
                return 0;
            }
            memset(p, 1, 1 << 20);
            mib++;
        }
    }
    if (strcmp(mode, "huge") == 0) {
        size_t tib = (size_t)1 << 40;
        char *p = mmap(NULL, tib, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            perror("mmap 1 TiB");
            return 1;
        }
        p[tib / 2] = 42;
        printf("1 TiB mapped, middle byte %d, stack depth sum %d\n", p[tib / 2], depth(512));
        printf("munmap: %d\n", munmap(p, tib));
        return 0;
    }
    if (strcmp(mode, "oom") == 0) {
        size_t gib = (size_t)1 << 30;
        char *p = mmap(NULL, gib, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            perror("mmap 1 GiB");
            return 1;
        }
        printf("writing 1 GiB\n");
        fflush(stdout);
        memset(p, 1, gib);
        printf("wrote it all\n");
        return 0;
    }
    if (strcmp(mode, "oom-read") == 0) {
        size_t gib = (size_t)1 << 30;
        char *p = mmap(NULL, gib, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        int fd = open("/dev/zero", O_RDONLY);
        if (p == MAP_FAILED || fd < 0) {
            perror("setup");
            return 1;
        }
        printf("reading 1 GiB\n");
        fflush(stdout);
        for (size_t done = 0; done < gib;) {
            ssize_t n = read(fd, p + done, 1 << 20);
            if (n <= 0) {
                perror("read");
                return 1;
            }
            done += (size_t)n;
        }
        printf("read it all\n");
        return 0;
    }
    if (strcmp(mode, "mmap") == 0) {
        long mib = 0;
        while (mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
            mib += 16;
        }
        printf("mmap failed after %ld MiB: %s\n", mib, strerror(errno));
        return 0;
    }
    if (strcmp(mode, "sbrk") == 0) {
        long mib = 0;
        while (sbrk(1 << 20) != (void *)-1) {
            mib++;
        }
        printf("sbrk failed after %ld MiB: %s\n", mib, strerror(errno));
        return 0;
    }
    if (strcmp(mode, "populate") == 0) {
        void *p = mmap(NULL, (size_t)1 << 30, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        printf("MAP_POPULATE of 1 GiB: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
        return 0;
    }
    return 2;
}
