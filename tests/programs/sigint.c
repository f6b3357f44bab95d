/* Ctrl-C on the host's terminal reaches the program as SIGINT (issue 13):
 * the program says it is ready, waits in pause() and reports the signal. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_int(int sig) { got = sig; }

int main(void) {
    signal(SIGINT, on_int);
    printf("ready\n");
    fflush(stdout);
    while (!got) {
        pause();
    }
    printf("got signal %d\n", (int)got);
    return 0;
}
