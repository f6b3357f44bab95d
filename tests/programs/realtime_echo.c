/* The guest's wall clock against the host's (issue 17): for each line the
 * host sends, print CLOCK_REALTIME in nanoseconds at once. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        printf("%lld%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
        fflush(stdout);
    }
    return 0;
}
