/* execveat(2) and fexecve(3): a path relative to a directory fd, the file
 * an fd names (AT_EMPTY_PATH, what glibc's fexecve calls), an absolute
 * path, and the errors Linux gives (EINVAL, ENOTDIR, ENOENT, ELOOP,
 * EBADF). Each success runs `busybox echo` in a child; the parent prints
 * the child's output order by waiting for each. argv[1]: busybox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static long execveat_(int dirfd, const char *path, char *const argv[], int flags) {
    return syscall(SYS_execveat, dirfd, path, argv, environ, flags);
}

static void run(const char *what, int dirfd, const char *path, int flags, int use_fexecve) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"busybox", "echo", (char *)what, NULL};
        if (use_fexecve)
            fexecve(dirfd, argv, environ);
        else
            execveat_(dirfd, path, argv, flags);
        printf("%s: failed: %s\n", what, strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("%s: exit %d\n", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void expect(const char *what, int dirfd, const char *path, int flags) {
    char *argv[] = {"busybox", "true", NULL};
    errno = 0;
    long r = execveat_(dirfd, path, argv, flags);
    printf("%s: %ld %s\n", what, r, strerror(errno));
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char dir_buf[4096], base_buf[4096];
    snprintf(dir_buf, sizeof dir_buf, "%s", argv[1]);
    snprintf(base_buf, sizeof base_buf, "%s", argv[1]);
    const char *dir = dirname(dir_buf), *base = basename(base_buf);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    int fd = open(argv[1], O_RDONLY);
    int pathfd = open(argv[1], O_PATH);
    if (dirfd < 0 || fd < 0 || pathfd < 0) {
        perror("open");
        return 1;
    }
    char link[64];
    snprintf(link, sizeof link, "/tmp/execveat-link-%d", getpid());
    if (symlink(argv[1], link) != 0) {
        perror("symlink");
        return 1;
    }
    run("relative to a directory fd", dirfd, base, 0, 0);
    run("the file an fd names", fd, "", AT_EMPTY_PATH, 0);
    run("an O_PATH fd", pathfd, "", AT_EMPTY_PATH, 0);
    run("fexecve", fd, NULL, 0, 1);
    run("absolute path, dirfd ignored", fd, argv[1], 0, 0);
    run("AT_FDCWD and a symbolic link", AT_FDCWD, link, 0, 0);
    expect("unknown flag", dirfd, base, 0x4);
    expect("relative to a file", fd, "x", 0);
    expect("empty path without AT_EMPTY_PATH", fd, "", 0);
    expect("AT_SYMLINK_NOFOLLOW on a link", AT_FDCWD, link, AT_SYMLINK_NOFOLLOW);
    expect("bad dirfd", 999, "x", 0);
    expect("a directory", dirfd, "", AT_EMPTY_PATH);
    unlink(link);
    return 0;
}
