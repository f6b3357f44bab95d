/* Micro-benchmarks of the system-call path, run identically inside a Linux
 * guest and inside Cloister by the benchmark driver (issue 6). Built static
 * from this source by the driver: `gcc -O2 -static -o syscall_bench
 * syscall_bench.c`.
 *
 * Prints one line per figure: `NAME ns_per_op=X iterations=N`. Each figure
 * is the median of 5 timed batches, timed with CLOCK_MONOTONIC.
 *
 * `syscall_bench [N [PATH]]`: getpid, a 1-byte read of /dev/zero,
 * open+close of PATH. `syscall_bench procs [N]`: fork+exit+wait,
 * fork+execve(/bin/true)+wait (Debian's coreutils `true`, linked against
 * glibc: the dynamic loader maps ld.so and libc at every exec; the driver
 * packs it and its libraries into both guests), fork+execve(this static
 * program, "exit")+wait, and 64 KiB through a pipe to a child that reads it
 * (the process figure). `syscall_bench exit`: exits 0 at once (what the
 * static exec row runs). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

static char *self_path;
extern char **environ;
/* The dynamic program of the fork_exec_true_wait row. */
static const char true_path[] = "/bin/true";

static void wait_child(pid_t pid) {
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        abort();
}
static void op_fork_exit_wait(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    wait_child(pid);
}
/* fork, execve(path, argv) with this program's environment (as a shell
 * passes it), wait for an exit status of 0. */
static void fork_exec_wait(const char *path, char *const argv[]) {
    pid_t pid = fork();
    if (pid == 0) {
        execve(path, argv, environ);
        _exit(127);
    }
    wait_child(pid);
}
static void op_fork_exec_true_wait(void) {
    char *argv[] = {(char *)true_path, NULL};
    fork_exec_wait(true_path, argv);
}
static void op_fork_exec_static_wait(void) {
    char *argv[] = {self_path, "exit", NULL};
    fork_exec_wait(self_path, argv);
}

/* A reader child for the pipe figure: drains the pipe until EOF. */
static int pipe_fd = -1;
static pid_t pipe_reader;
static char pipe_chunk[65536];
static void start_pipe_reader(void) {
    int fds[2];
    if (pipe(fds) != 0) abort();
    pipe_reader = fork();
    if (pipe_reader == 0) {
        close(fds[1]);
        static char buf[65536];
        while (read(fds[0], buf, sizeof buf) > 0) {
        }
        _exit(0);
    }
    close(fds[0]);
    pipe_fd = fds[1];
}
static void op_pipe_64k(void) {
    size_t done = 0;
    while (done < sizeof pipe_chunk) {
        ssize_t n = write(pipe_fd, pipe_chunk + done, sizeof pipe_chunk - done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
}

static void bench(const char *name, op_fn op, long n) {
    double batches[5];
    long warm = n < 1000 ? n / 10 + 1 : 1000;
    for (long i = 0; i < warm; i++) op(); /* warm up */
    for (int b = 0; b < 5; b++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) op();
        batches[b] = (now_ns() - t0) / n;
    }
    qsort(batches, 5, sizeof batches[0], cmp);
    printf("%s ns_per_op=%.1f iterations=%ld\n", name, batches[2], n);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "exit") == 0) return 0;
    if (argc > 1 && strcmp(argv[1], "procs") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 200;
        bench("fork_exit_wait", op_fork_exit_wait, n);
        bench("fork_exec_true_wait", op_fork_exec_true_wait, n);
        bench("fork_exec_static_wait", op_fork_exec_static_wait, n);
        start_pipe_reader();
        bench("pipe_64KiB", op_pipe_64k, n * 10);
        close(pipe_fd);
        wait_child(pipe_reader);
        return 0;
    }
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
