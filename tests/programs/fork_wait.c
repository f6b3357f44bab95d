/* Processes: fork, wait statuses, memory isolation (copy-on-write) and
 * MAP_SHARED memory, pipes and shared file offsets between parent and child, getppid, WNOHANG, SIGCHLD, execve,
 * vfork and posix_spawn. Prints only what is the same natively and in
 * Cloister (no pids), so the two outputs compare byte for byte.
 * Usage: fork_wait PATH_TO_BUSYBOX */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile sig_atomic_t sigchld_count;
static int shared_value = 1;

static void on_sigchld(int sig) { (void)sig; sigchld_count++; }

/* A thread that blocks for good (on a pipe nobody writes). */
static void *blocker(void *arg) {
    char b;
    ssize_t n = read(*(int *)arg, &b, 1);
    (void)n;
    return NULL;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void report(const char *what, int status) {
    if (WIFEXITED(status))
        say("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        say("%s: killed by signal %d\n", what, WTERMSIG(status));
    else
        say("%s: status %#x\n", what, status);
}

int main(int argc, char **argv) {
    const char *busybox = argc > 1 ? argv[1] : "/bin/busybox";
    int status;
    pid_t me = getpid();

    /* Exit status and memory isolation. */
    pid_t c = fork();
    if (c == 0) {
        shared_value = 2;
        _exit(getppid() == me ? 7 : 99);
    }
    if (c < 0) { perror("fork"); return 1; }
    if (waitpid(c, &status, 0) != c) { perror("waitpid"); return 1; }
    report("child exit", status);
    say("parent still sees %d\n", shared_value);

    /* MAP_SHARED anonymous memory is shared, MAP_PRIVATE is not; a big
     * private buffer the child rewrites stays the parent's. */
    int *shm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static char big[1 << 20];
    if (shm == MAP_FAILED || priv == MAP_FAILED) { perror("mmap"); return 1; }
    shm[0] = 1;
    priv[0] = 1;
    memset(big, 'p', sizeof big);
    c = fork();
    if (c == 0) {
        shm[0] = 41;
        shm[1024] = 42; /* the second page, never touched by the parent */
        priv[0] = 43;
        memset(big, 'c', sizeof big);
        _exit(0);
    }
    waitpid(c, &status, 0);
    say("MAP_SHARED sees %d and %d, MAP_PRIVATE keeps %d, big buffer keeps '%c%c'\n",
        shm[0], shm[1024], priv[0], big[0], big[sizeof big - 1]);

        /* A child killed by a signal. */
    c = fork();
    if (c == 0) {
        kill(getpid(), SIGTERM);
        for (;;) pause();
    }
    waitpid(c, &status, 0);
    report("child killed", status);

    /* Groups and sessions: a child in a group of its own, killed through
     * the group; a child that starts a session. */
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        for (;;) pause();
    }
    setpgid(c, c); /* as a shell does, racing the child's own call */
    say("child leads its group: %d\n", getpgid(c) == c);
    kill(-c, SIGTERM);
    waitpid(c, &status, 0);
    report("group kill", status);
    c = fork();
    if (c == 0) _exit(setsid() == getpid() && getsid(0) == getpid() && getpgrp() == getpid() ? 0 : 1);
    waitpid(c, &status, 0);
    report("setsid child", status);
    errno = 0;
    int r = kill(-99999, SIGTERM);
    say("kill of a missing group: %d %s\n", r, errno == ESRCH ? "ESRCH" : "?");

        /* A pipe: the child writes and exits, the parent reads to EOF. */
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); return 1; }
    c = fork();
    if (c == 0) {
        close(fds[0]);
        const char msg[] = "hello through the pipe";
        if (write(fds[1], msg, sizeof msg - 1) < 0) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char buf[128];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fds[0]);
    say("parent read: %s (then EOF)\n", buf);
    waitpid(c, &status, 0);
    report("pipe writer", status);

    /* WNOHANG while the child waits on a pipe, then a real wait. */
    if (pipe(fds) != 0) return 1;
    c = fork();
    if (c == 0) {
        close(fds[1]);
        char b;
        ssize_t n = read(fds[0], &b, 1);
        _exit(n == 1 ? b - '0' : 100);
    }
    close(fds[0]);
    say("WNOHANG: %d\n", (int)waitpid(-1, &status, WNOHANG));
    if (write(fds[1], "5", 1) != 1) return 1;
    close(fds[1]);
    say("wait(-1) found the child: %d\n", wait(&status) == c);
    report("released child", status);
    errno = 0;
    int none = (int)wait(&status);
    say("no children left: %d %s\n", none, errno == ECHILD ? "ECHILD" : "?");

    /* A shared file offset. */
    int f = open("/tmp/fork_offset.txt", O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (f < 0) { perror("open"); return 1; }
    c = fork();
    if (c == 0) _exit(write(f, "child,", 6) == 6 ? 0 : 1);
    waitpid(c, &status, 0);
    if (write(f, "parent", 6) != 6) return 1;
    memset(buf, 0, sizeof buf);
    if (pread(f, buf, sizeof buf - 1, 0) < 0) return 1;
    say("shared offset: %s\n", buf);
    close(f);
    unlink("/tmp/fork_offset.txt");

    /* SIGCHLD reaches the parent. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    c = fork();
    if (c == 0) _exit(3);
    while (waitpid(c, &status, 0) < 0 && errno == EINTR) {}
    say("SIGCHLD handled: %d\n", sigchld_count);
    signal(SIGCHLD, SIG_DFL);

    /* execve from a forked child. */
    c = fork();
    if (c == 0) {
        char *args[] = {"busybox", "echo", "echo from an execve'd busybox", NULL};
        execve(busybox, args, environ);
        _exit(127);
    }
    waitpid(c, &status, 0);
    report("execve child", status);
    c = fork();
    if (c == 0) {
        char *args[] = {"busybox", "sh", "-c", "exit 4", NULL};
        execve(busybox, args, environ);
        _exit(127);
    }
    waitpid(c, &status, 0);
    report("busybox sh exit 4", status);
    c = fork();
    if (c == 0) {
        char *args[] = {"nothing", NULL};
        execve("/no/such/program", args, environ);
        _exit(errno == ENOENT ? 42 : 43);
    }
    waitpid(c, &status, 0);
    report("failed execve", status);

    /* execve from a process with another thread, blocked in a read. */
    c = fork();
    if (c == 0) {
        static int p2[2];
        pthread_t t;
        if (pipe(p2) != 0 || pthread_create(&t, NULL, blocker, &p2[0]) != 0) _exit(126);
        usleep(10000);
        char *args[] = {"busybox", "echo", "execve ended the other thread", NULL};
        execve(busybox, args, environ);
        _exit(127);
    }
    waitpid(c, &status, 0);
    report("threaded execve", status);

        /* execve of a #! script. */
    char script[256];
    snprintf(script, sizeof script, "#!%s sh\necho \"script got $# args: $*\"\nexit 6\n", busybox);
    f = open("/tmp/fork_script.sh", O_CREAT | O_TRUNC | O_WRONLY, 0755);
    if (f < 0 || write(f, script, strlen(script)) != (ssize_t)strlen(script)) return 1;
    close(f);
    c = fork();
    if (c == 0) {
        char *args[] = {"fork_script.sh", "a", "b", NULL};
        execve("/tmp/fork_script.sh", args, environ);
        _exit(127);
    }
    waitpid(c, &status, 0);
    report("#! script", status);
    unlink("/tmp/fork_script.sh");

        /* vfork + execve, and posix_spawn. */
    c = vfork();
    if (c == 0) {
        char *args[] = {"busybox", "echo", "echo after vfork", NULL};
        execve(busybox, args, environ);
        _exit(127);
    }
    waitpid(c, &status, 0);
    report("vfork child", status);
    char *sargs[] = {"busybox", "printf", "%s\\n", "posix_spawn works", NULL};
    if (posix_spawn(&c, busybox, NULL, NULL, sargs, environ) != 0) { perror("posix_spawn"); return 1; }
    waitpid(c, &status, 0);
    report("posix_spawn child", status);

    /* Many children at once, reaped in any order. */
    int sum = 0;
    for (int i = 1; i <= 8; i++) {
        if (fork() == 0) _exit(i);
    }
    for (int i = 0; i < 8; i++) {
        if (wait(&status) > 0 && WIFEXITED(status)) sum += WEXITSTATUS(status);
    }
    say("eight children, statuses sum to %d\n", sum);
    return 0;
}
