/* Writes to a pipe whose read end is closed: without a handler SIGPIPE
 * ends the program (status 141); with one (argv[1] given) the handler runs
 * and write returns EPIPE. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t caught;
static void handler(int sig) { caught = sig; }

int main(int argc, char **argv) {
    int p[2];
    if (pipe(p) != 0) return 2;
    close(p[0]);
    if (argc > 1) signal(SIGPIPE, handler);
    ssize_t r = write(p[1], "x", 1);
    printf("write = %zd (%s), handler saw signal %d\n", r, strerror(errno), (int)caught);
    return 0;
}
