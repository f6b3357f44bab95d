/* A fork bomb that stops at the first failure: every child waits on a
 * pipe; the parent forks until fork fails, reports the errno, then closes
 * the pipe so the children exit, and reaps them all. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); return 1; }
    int forked = 0, err = 0;
    for (;;) {
        pid_t c = fork();
        if (c == 0) {
            char b;
            close(fds[1]);
            _exit(read(fds[0], &b, 1) == 0 ? 0 : 1);
        }
        if (c < 0) { err = errno; break; }
        if (++forked > 100000) break;
    }
    close(fds[1]);
    int reaped = 0, clean = 0, status;
    while (wait(&status) > 0) {
        reaped++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) clean++;
    }
    printf("fork failed with %s after %s children\n",
           err == EAGAIN ? "EAGAIN" : strerror(err), forked >= 16 ? "at least 16" : "too few");
    printf("reaped %s, all exited cleanly: %s\n", reaped == forked ? "all" : "not all",
           clean == forked ? "yes" : "no");
    /* The system still works: one more child. */
    pid_t c = fork();
    if (c == 0) _exit(9);
    waitpid(c, &status, 0);
    printf("a fork after the bomb: %d\n", WEXITSTATUS(status));
    return 0;
}
