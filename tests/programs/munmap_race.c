/* TLB shootdown (issue 15): a reader thread reads a page in a loop (so
 * its CPU caches the translation) while the main thread, once the reader
 * is running, unmaps the page. The reader must fault at once, as on
 * Linux: its SIGSEGV handler reports the signal, the code and whether the
 * faulting address lies in the page, and ends the program. Without a
 * shootdown the reader's CPU would go on reading the freed frame through
 * its stale TLB entry and never fault. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile char *page;
static volatile int reading;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char buf[128];
    char *addr = si->si_addr;
    int inside = addr >= (char *)page && addr < (char *)page + 4096;
    int n = snprintf(buf, sizeof buf, "reader: signal %d code %s address in the page: %s\n", sig,
                     si->si_code == SEGV_MAPERR ? "SEGV_MAPERR" : "other", inside ? "yes" : "no");
    write(1, buf, n);
    _exit(0);
}

static void *reader(void *arg) {
    (void)arg;
    unsigned long sum = 0;
    for (;;) {
        for (int i = 0; i < 4096; i += 64)
            sum += page[i];
        reading = 1;
        if (sum == 1)
            write(1, "?", 1);
    }
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    page[0] = 2;
    pthread_t t;
    if (pthread_create(&t, NULL, reader, NULL) != 0) {
        perror("pthread_create");
        return 2;
    }
    while (!reading)
        ;
    printf("main: unmapping while the reader reads\n");
    fflush(stdout);
    munmap((void *)page, 4096);
    pthread_join(t, NULL);
    printf("main: the reader never faulted\n");
    return 1;
}
