/* A thread that ends with pthread_exit, and one cancelled: glibc unwinds
 * both through libgcc_s.so.1, which it loads with dlopen (no DT_NEEDED
 * names it), so `cloister run` must pack it with libc. Run by
 * tests/tests/linux_programs.rs in Cloister and natively. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *exits(void *arg) {
    pthread_exit(arg);
    return NULL;
}

static void *waits(void *arg) {
    (void)arg;
    for (;;) pause(); /* a cancellation point */
    return NULL;
}

int main(void) {
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, exits, (void *)42);
    pthread_join(t, &ret);
    printf("pthread_exit gave %ld\n", (long)ret);
    pthread_create(&t, NULL, waits, NULL);
    /* Let it block in pause() first: the cancellation then comes through
     * glibc's SIGCANCEL handler, which acts only on si_code SI_TKILL. */
    usleep(100000);
    pthread_cancel(t);
    pthread_join(t, &ret);
    printf("cancelled: %d\n", ret == PTHREAD_CANCELED);
    return 0;
}
