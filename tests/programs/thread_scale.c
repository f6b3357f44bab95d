/* Many threads alive at once (issue 11): N threads are created and each
 * waits at a barrier until all exist, then adds to a counter and exits;
 * the main thread joins them all and checks the count. With "max", threads
 * are created (each parked on a condition variable) until pthread_create
 * fails — it must fail with EAGAIN, not hang or crash — then released.
 * Usage: thread_scale N | thread_scale max LIMIT */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_barrier_t barrier;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int released;
static long counter;

static void *at_barrier(void *arg) {
    pthread_barrier_wait(&barrier);
    __atomic_add_fetch(&counter, (long)arg, __ATOMIC_RELAXED);
    return NULL;
}

static void *parked(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!released) {
        pthread_cond_wait(&cond, &lock);
    }
    pthread_mutex_unlock(&lock);
    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Small stacks, as thread-heavy servers configure them. */
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (argc > 1 && strcmp(argv[1], "max") == 0) {
        long limit = argc > 2 ? atol(argv[2]) : 100000;
        pthread_t *t = calloc(limit, sizeof *t);
        long n = 0;
        int err = 0;
        while (n < limit && (err = pthread_create(&t[n], &attr, parked, NULL)) == 0) {
            n++;
        }
        printf("created %s threads, then: %s\n", n > 0 ? "some" : "no",
               n == limit ? "limit reached" : strerror(err));
        pthread_mutex_lock(&lock);
        released = 1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        for (long i = 0; i < n; i++) {
            pthread_join(t[i], NULL);
        }
        printf("joined all: %s\n", counter == n ? "yes" : "no");
        return 0;
    }
    long n = argc > 1 ? atol(argv[1]) : 2000;
    pthread_t *t = calloc(n, sizeof *t);
    pthread_barrier_init(&barrier, NULL, (unsigned)n + 1);
    for (long i = 0; i < n; i++) {
        int err = pthread_create(&t[i], &attr, at_barrier, (void *)(i + 1));
        if (err != 0) {
            printf("pthread_create %ld: %s\n", i, strerror(err));
            return 1;
        }
    }
    pthread_barrier_wait(&barrier);
    for (long i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
    printf("%ld threads, counter %ld (expected %ld)\n", n, counter, n * (n + 1) / 2);
    return counter == n * (n + 1) / 2 ? 0 : 1;
}
