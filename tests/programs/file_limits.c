/* File sizes a program controls, and what Linux (tmpfs) answers: a huge
 * ftruncate, a one-byte write past 2 GiB (sparse: one page), a write
 * ending at tmpfs's largest size (2^63 - 1: allowed), and — with "fill" — 1 MiB writes until the file
 * system is full (ENOSPC, the program goes on). Cloister used to panic on
 * each (issue 11). Usage: file_limits DIR [fill] */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

static int open_in(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    return fd;
}

static void sizes(int fd, const char *what) {
    struct stat st;
    fstat(fd, &st);
    printf("%s: size %lld, at most 16 KiB stored: %s\n", what, (long long)st.st_size,
           st.st_blocks * 512 <= 16384 ? "yes" : "no");
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int fd = open_in(dir, "huge");
    printf("ftruncate 0xdead0000: %d\n", ftruncate(fd, 0xdead0000LL));
    sizes(fd, "after ftruncate");
    printf("ftruncate 256 MiB: %d\n", ftruncate(fd, 256LL << 20));
    sizes(fd, "after shrinking");
    close(fd);

    fd = open_in(dir, "sparse");
    printf("pwrite 1 byte at 2 GiB: %zd\n", pwrite(fd, "x", 1, 2LL << 30));
    sizes(fd, "sparse");
    char c = 0;
    printf("pread at 2 GiB - 1: %zd, byte %d\n", pread(fd, &c, 1, (2LL << 30) - 1), c);
    errno = 0;
    ssize_t r = pwrite(fd, "x", 1, INT64_MAX - 1);
    printf("pwrite near the largest offset: %zd (%s)\n", r, r < 0 ? strerror(errno) : "ok");
    close(fd);

    if (argc > 2 && strcmp(argv[2], "fill") == 0) {
        fd = open_in(dir, "fill");
        static char block[1 << 20];
        memset(block, 'f', sizeof block);
        long mib = 0;
        for (;;) {
            ssize_t n = write(fd, block, sizeof block);
            if (n < 0) {
                printf("filled %ld MiB, then: %s\n", mib, strerror(errno));
                break;
            }
            if (n < (ssize_t)sizeof block) {
                printf("short write after %ld MiB\n", mib);
            }
            mib++;
        }
        struct statfs sf;
        statfs(dir, &sf);
        printf("statfs: free blocks %s\n", sf.f_bfree < 256 ? "nearly none" : "many");
        ftruncate(fd, 0);
        statfs(dir, &sf);
        printf("after truncating: free blocks %s\n", sf.f_bfree > 1024 ? "many again" : "still few");
        close(fd);
    }
    return 0;
}
