/* Stresses the LibOS's threads: 8 threads increment a shared counter under
 * a mutex 10^6 times each, hand off through a condition variable, and
 * check their thread-local storage. Prints the final count; exits 0 only
 * if everything matched. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
#define ITERATIONS 1000000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static int started;
static int go;
static __thread long tls_value;

static void *worker(void *arg) {
    long id = (long)arg;
    tls_value = id * 1000;
    pthread_mutex_lock(&lock);
    started++;
    pthread_cond_broadcast(&cond);
    while (!go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < ITERATIONS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return (void *)(tls_value == id * 1000 ? 0L : 1L);
}

int main(void) {
    pthread_t t[THREADS];
    tls_value = -1;
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(i + 1)) != 0) {
            perror("pthread_create");
            return 2;
        }
    pthread_mutex_lock(&lock);
    while (started < THREADS)
        pthread_cond_wait(&cond, &lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    int bad_tls = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        bad_tls += ret != 0;
    }
    printf("counter=%ld expected=%ld tls_errors=%d main_tls=%ld\n", counter,
           (long)THREADS * ITERATIONS, bad_tls, tls_value);
    return counter == (long)THREADS * ITERATIONS && bad_tls == 0 && tls_value == -1 ? 0 : 1;
}
