/* MAP_SHARED file mappings: a file in /dev/shm mapped shared by a parent
 * and a forked child (stores seen by the other process and by read()),
 * write()/pwrite() seen through every mapping, two mappings of one file,
 * a read-only shared mapping seeing later writes, truncation and unlink
 * while mapped, SIGBUS past the end of the file, msync, and named POSIX
 * semaphores (sem_open: a file in /dev/shm mapped shared) ping-ponging
 * between the processes, the child opening them again by name.
 * Prints only what is the same natively and in Cloister. */
#include <fcntl.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 100

static sigjmp_buf bus_jump;

static void on_bus(int sig) {
    siglongjmp(bus_jump, sig);
}

static int fail(const char *what) {
    perror(what);
    return 1;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    char path[64], ping_name[64], pong_name[64], buf[64];
    snprintf(path, sizeof path, "/dev/shm/cloister-map-%d", (int)getpid());
    snprintf(ping_name, sizeof ping_name, "/cloister-ping-%d", (int)getpid());
    snprintf(pong_name, sizeof pong_name, "/cloister-pong-%d", (int)getpid());

    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, 2 * page))
        return fail("create");
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return fail("mmap");

    /* Named semaphores: sem_open maps a /dev/shm file shared. */
    sem_t *ping = sem_open(ping_name, O_CREAT | O_EXCL, 0600, 0);
    sem_t *pong = sem_open(pong_name, O_CREAT | O_EXCL, 0600, 0);
    if (ping == SEM_FAILED || pong == SEM_FAILED)
        return fail("sem_open");

    pid_t pid = fork();
    if (pid < 0)
        return fail("fork");
    if (pid == 0) {
        /* The child opens the semaphores again by name: other mappings of
         * the same files, so their futexes must be keyed by the file. */
        sem_t *ping2 = sem_open(ping_name, 0);
        sem_t *pong2 = sem_open(pong_name, 0);
        if (ping2 == SEM_FAILED || pong2 == SEM_FAILED)
            _exit(2);
        strcpy(m, "stored by the child");
        int *count = (int *)(m + page);
        for (int i = 0; i < ROUNDS; i++) {
            if (sem_wait(ping2))
                _exit(3);
            (*count)++;
            if (sem_post(pong2))
                _exit(4);
        }
        _exit(0);
    }
    int *count = (int *)(m + page);
    int rounds_ok = 1;
    for (int i = 0; i < ROUNDS; i++) {
        if (sem_post(ping) || sem_wait(pong))
            return fail("semaphore");
        if (*count != i + 1)
            rounds_ok = 0;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return fail("waitpid");
    printf("child exit %d, %d rounds through named semaphores, in step: %s\n",
           WEXITSTATUS(status), *count, rounds_ok ? "yes" : "no");
    printf("parent's mapping: %s\n", m);
    memset(buf, 0, sizeof buf);
    if (pread(fd, buf, 19, 0) != 19)
        return fail("pread");
    printf("read() of the file: %s\n", buf);

    /* write() is seen through the mapping, a store by read(). */
    if (pwrite(fd, "written by pwrite", 17, 100) != 17)
        return fail("pwrite");
    printf("mapping after pwrite: %.17s\n", m + 100);
    strcpy(m + 200, "stored in the mapping");
    memset(buf, 0, sizeof buf);
    if (pread(fd, buf, 21, 200) != 21)
        return fail("pread");
    printf("read() after a store: %s\n", buf);

    /* A second mapping of the file, at another address and offset. */
    char *second = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, page);
    if (second == MAP_FAILED)
        return fail("mmap second");
    strcpy(second + 64, "via the second mapping");
    printf("first mapping sees: %s\n", m + page + 64);

    /* A read-only shared mapping sees later writes (no copy at mmap). */
    int rfd = open(path, O_RDONLY);
    char *ro = mmap(NULL, page, PROT_READ, MAP_SHARED, rfd, 0);
    if (rfd < 0 || ro == MAP_FAILED)
        return fail("mmap read-only");
    if (pwrite(fd, "later", 5, 300) != 5)
        return fail("pwrite");
    printf("read-only mapping sees: %.5s\n", ro + 300);
    printf("msync: %d\n", msync(m, 2 * page, MS_SYNC));

    /* Truncated inside the first page: its tail reads as zeros. */
    if (ftruncate(fd, 10))
        return fail("ftruncate");
    printf("after truncate to 10: \"%.10s\" then %d %d\n", m, m[10], m[19]);
    /* Unlinked while mapped: the mapping still works. */
    if (unlink(path))
        return fail("unlink");
    strcpy(m + 2, "alive");
    printf("after unlink: %s\n", m + 2);

    /* A page wholly past the end of a file raises SIGBUS. */
    snprintf(path, sizeof path, "/dev/shm/cloister-bus-%d", (int)getpid());
    int bfd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (bfd < 0 || ftruncate(bfd, 100))
        return fail("create bus");
    char *b = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
    if (b == MAP_FAILED)
        return fail("mmap bus");
    unlink(path);
    b[99] = 'x';
    printf("inside the last page: %d %d\n", b[99], b[100]);
    signal(SIGBUS, on_bus);
    int sig = sigsetjmp(bus_jump, 1);
    if (sig == 0) {
        volatile char c = b[page];
        (void)c;
        printf("no signal past the end\n");
    } else {
        printf("past the end: signal %d\n", sig);
    }

    sem_unlink(ping_name);
    sem_unlink(pong_name);
    return 0;
}
