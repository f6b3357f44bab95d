/* Readiness across threads: a writer thread feeds a pipe and an eventfd
 * after short sleeps while the main thread waits in poll, select and
 * epoll_wait (blocking the thread, not the machine). Prints what it saw;
 * exits 0 only if every wait woke for the right fd with the right data. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];
static int efd;

static void sleep_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void *writer(void *arg) {
    (void)arg;
    sleep_ms(20);
    if (write(pipefd[1], "ping", 4) != 4) return (void *)1;
    sleep_ms(20);
    uint64_t one = 1;
    if (write(efd, &one, 8) != 8) return (void *)1;
    sleep_ms(20);
    if (write(pipefd[1], "pong", 4) != 4) return (void *)1;
    close(pipefd[1]);
    return NULL;
}

int main(void) {
    int ok = 1;
    if (pipe(pipefd) != 0 || (efd = eventfd(0, 0)) < 0) {
        perror("setup");
        return 2;
    }
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);

    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    int n = poll(&p, 1, 5000);
    char buf[8] = {0};
    ok &= n == 1 && (p.revents & POLLIN) && read(pipefd[0], buf, 4) == 4 && !strcmp(buf, "ping");
    printf("poll: %d %s\n", n, buf);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(efd, &rs);
    struct timeval tv = {5, 0};
    n = select(efd + 1, &rs, NULL, NULL, &tv);
    uint64_t v = 0;
    ok &= n == 1 && FD_ISSET(efd, &rs) && read(efd, &v, 8) == 8 && v == 1;
    printf("select: %d %llu\n", n, (unsigned long long)v);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 42};
    epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);
    struct epoll_event out;
    n = epoll_wait(ep, &out, 1, 5000);
    memset(buf, 0, sizeof buf);
    ok &= n == 1 && out.data.u32 == 42 && read(pipefd[0], buf, 4) == 4 && !strcmp(buf, "pong");
    printf("epoll: %d %u %s\n", n, out.data.u32, buf);

    n = epoll_wait(ep, &out, 1, 5000);
    ok &= n == 1 && read(pipefd[0], buf, 4) == 0;
    printf("eof: %d\n", n);

    n = poll(&p, 1, 30);
    ok &= n == 1; /* end of file stays readable */
    void *ret;
    pthread_join(t, &ret);
    ok &= ret == NULL;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
