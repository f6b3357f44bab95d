/* read()/write() of a regular file into and from memory that maps the
 * same file and has not been touched yet: Cloister copies a file's pages
 * straight to user memory under the file's lock and must fault such a
 * page in (which reads the same file) with the lock dropped, or it
 * deadlocks. Then Linux's answers for partly bad buffers: the bytes done
 * before the bad page, or EFAULT when none. Prints only what is the same
 * natively and in Cloister. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static long pg;
static int fd;
static unsigned char *snap;

static unsigned char want(long i) {
    return (unsigned char)(i * 7 + i / 4093);
}

static const char *yes(int ok) {
    return ok ? "yes" : "NO";
}

static const char *err(ssize_t r) {
    return r < 0 ? strerrorname_np(errno) : "-";
}

/* The file's first `len` bytes, into `snap`. */
static void snapshot(long len) {
    if (pread(fd, snap, len, 0) != len) {
        perror("snapshot");
        exit(1);
    }
}

static void *map(long len, int prot, int flags) {
    void *m = mmap(NULL, len, prot, flags, flags & MAP_ANONYMOUS ? -1 : fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return m;
}

int main(void) {
    pg = sysconf(_SC_PAGESIZE);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/cloister-same-%d", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    snap = malloc(32 * pg);
    if (fd < 0 || !snap)
        return perror("open"), 1;
    for (long i = 0; i < 4 * pg; i++)
        snap[i] = want(i);
    if (write(fd, snap, 4 * pg) != 4 * pg)
        return perror("write"), 1;
    const int rw = PROT_READ | PROT_WRITE;

    /* A fresh private mapping, read into: its pages are filled from the
     * file while the file is being read. */
    unsigned char *m = map(4 * pg, rw, MAP_PRIVATE);
    ssize_t r = pread(fd, m, 2 * pg, pg);
    int ok = 1;
    for (long i = 0; i < 2 * pg; i++)
        ok &= m[i] == want(pg + i);
    snapshot(4 * pg);
    int same = 1;
    for (long i = 0; i < 4 * pg; i++)
        same &= snap[i] == want(i);
    printf("pread into a fresh private mapping of the file: %zd, bytes right: %s, file unchanged: %s\n",
           r, yes(ok), yes(same));

    /* write() from the two untouched pages of the same mapping. */
    r = pwrite(fd, m + 2 * pg, 2 * pg, 4 * pg);
    snapshot(6 * pg);
    ok = 1;
    for (long i = 0; i < 2 * pg; i++)
        ok &= snap[4 * pg + i] == want(2 * pg + i);
    printf("pwrite from a fresh private mapping of the file: %zd, bytes right: %s\n", r, yes(ok));

    /* A shared mapping is the file: read() into it changes the file. */
    unsigned char *s = map(2 * pg, rw, MAP_SHARED);
    r = pread(fd, s, pg, 3 * pg);
    snapshot(6 * pg);
    ok = 1;
    for (long i = 0; i < pg; i++)
        ok &= snap[i] == want(3 * pg + i) && s[i] == snap[i];
    printf("pread into a fresh shared mapping of the file: %zd, file changed with it: %s\n", r,
           yes(ok));
    r = pwrite(fd, s + pg, pg, 5 * pg);
    snapshot(6 * pg);
    ok = 1;
    for (long i = 0; i < pg; i++)
        ok &= snap[5 * pg + i] == want(pg + i);
    printf("pwrite from a fresh shared mapping of the file: %zd, bytes right: %s\n", r, yes(ok));

    /* The page a shared mapping maps is the file's page (in Cloister a
     * frame the kernel copies to and from directly): pwrite into it is
     * seen through the mapping, pread of it reads the mapping's store. */
    static const char msg[] = "through the shared page";
    r = pwrite(fd, msg, sizeof msg, 10);
    s[300] = 'Z';
    char z = 0;
    ssize_t r2 = pread(fd, &z, 1, 300);
    printf("pwrite into a shared-mapped page: %zd, seen: %s; pread of a store: %zd %c\n", r,
           yes(memcmp(s + 10, msg, sizeof msg) == 0), r2, z);

    /* read()/write() at the file offset, six pages at once. */
    snapshot(6 * pg);
    unsigned char *m2 = map(6 * pg, rw, MAP_PRIVATE);
    lseek(fd, 0, SEEK_SET);
    r = read(fd, m2, 6 * pg);
    printf("read of six pages into a fresh private mapping: %zd, bytes right: %s\n", r,
           yes(memcmp(m2, snap, 6 * pg) == 0));
    unsigned char *m3 = map(6 * pg, rw, MAP_PRIVATE);
    r = write(fd, m3, 6 * pg);
    unsigned char *again = snap + 12 * pg;
    ok = pread(fd, again, 6 * pg, 6 * pg) == 6 * pg && memcmp(again, snap, 6 * pg) == 0;
    printf("write of six pages from a fresh private mapping: %zd, bytes right: %s\n", r, yes(ok));
    /* readv into two fresh private pages of the file, then a bad piece. */
    unsigned char *m4 = map(2 * pg, rw, MAP_PRIVATE);
    struct iovec iov[3] = {{m4 + 10, pg}, {m4 + pg + 10, 100}, {(void *)0x10, 100}};
    r = preadv(fd, iov, 3, 0);
    printf("preadv into a fresh private mapping, then a bad piece: %zd, bytes right: %s\n", r,
           yes(memcmp(m4 + 10, snap, pg) == 0 && memcmp(m4 + pg + 10, snap + pg, 100) == 0));

    /* Partly bad buffers. */
    unsigned char *ro = map(pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    unsigned char *a = map(2 * pg, rw, MAP_PRIVATE | MAP_ANONYMOUS);
    munmap(a + pg, pg);
    r = pread(fd, a + 100, 2 * pg, 0);
    printf("pread over the end of a mapping: %zd\n", r);
    r = pread(fd, a + pg, 10, 0);
    printf("pread into no mapping: %zd %s\n", r, err(r));
    r = pread(fd, ro, 10, 0);
    printf("pread into a read-only mapping: %zd %s\n", r, err(r));
    r = read(fd, (void *)-4096L, 10);
    printf("read into the kernel half: %zd %s\n", r, err(r));
    memcpy(a + pg - 8, "12345678", 8);
    r = pwrite(fd, a + pg - 8, 100, 20 * pg);
    struct stat st;
    fstat(fd, &st);
    printf("pwrite over the end of a mapping: %zd, size %ld pages + %ld\n", r,
           (long)(st.st_size / pg), (long)(st.st_size % pg));
    /* (Linux 6 then grows the file to the offset, as if 0 bytes had been
     * written there; Cloister leaves it: not compared.) */
    r = pwrite(fd, a + pg, 100, 30 * pg);
    printf("pwrite from no mapping: %zd %s\n", r, err(r));
    unlink(path);
    return 0;
}
