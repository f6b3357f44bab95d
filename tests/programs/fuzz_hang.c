/* A stand-in for sysfuzz that hangs (tests/tests/fuzz.rs): it reports
 * progress as sysfuzz does, announces one call when replayed with FROM,
 * then waits for ever with every signal blocked — what a kernel that
 * stopped making progress looks like from the host. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long seed = argc > 1 ? atol(argv[1]) : 0;
    printf("sysfuzz seed %ld: progress 10000\n", seed);
    if (argc > 3) {
        printf("sysfuzz seed %ld call %s: 77 0x3 0xdead0000 0 0 0 0\n", seed, argv[3]);
    }
    fflush(stdout);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        pause();
    }
}
