/* Many TCP connections over loopback in one program (issue 11):
 *   hold N     — N clients connect to our own listener and stay open at
 *                once; each sends 8 bytes that the server echoes and the
 *                client checks.
 *   latency K  — connect + accept + close, timed 200 times, with 0 and
 *                then K idle connections open: prints both medians and
 *                the ratio (a benchmark: docs/PERFORMANCE.md). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int listener(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(7070);
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(l, 4096) < 0) die("listen");
    return l;
}

static int hold(long n) {
    int l = listener();
    int *c = calloc(n, sizeof *c);
    int *sv = calloc(n, sizeof *sv);
    for (long i = 0; i < n; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c[i] < 0) die("socket");
        if (connect(c[i], (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
            die("connect");
    }
    /* Every connection is in the backlog: accept them all; then each
     * client sends 8 bytes, the server echoes them, the client checks. */
    for (long i = 0; i < n; i++) {
        sv[i] = accept(l, NULL, NULL);
        if (sv[i] < 0) die("accept");
    }
    char msg[16], got[16];
    for (long i = 0; i < n; i++) {
        int fl = fcntl(c[i], F_GETFL);
        fcntl(c[i], F_SETFL, fl & ~O_NONBLOCK);
        snprintf(msg, sizeof msg, "conn%04ld", i % 10000);
        if (write(c[i], msg, 8) != 8) die("client write");
    }
    for (long i = 0; i < n; i++) {
        ssize_t r = read(sv[i], got, 8);
        if (r != 8 || write(sv[i], got, 8) != 8) die("echo");
    }
    for (long i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "conn%04ld", i % 10000);
        if (read(c[i], got, 8) != 8 || memcmp(got, msg, 8) != 0) die("client read");
    }
    printf("%ld connections open at once, all echoed\n", n);
    return 0;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of 200 connect + accept + close cycles. */
static double cycle_median(int l) {
    double t[200];
    for (int i = 0; i < 200; i++) {
        double start = now_us();
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        int s = accept(l, NULL, NULL);
        if (s < 0) die("accept");
        t[i] = now_us() - start;
        close(c);
        close(s);
    }
    qsort(t, 200, sizeof *t, cmp);
    return t[100];
}

static int latency(long k) {
    int l = listener();
    double empty = cycle_median(l);
    for (long i = 0; i < k; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect idle");
        if (accept(l, NULL, NULL) < 0) die("accept idle");
    }
    double busy = cycle_median(l);
    printf("connect+accept median: %.0f us with 0 open, %.0f us with %ld open, ratio %.2f\n",
           empty, busy, k, busy / empty);
    return 0;
}

int main(int argc, char **argv) {
    struct rlimit r = {8192, 8192};
    setrlimit(RLIMIT_NOFILE, &r);
    const char *mode = argc > 1 ? argv[1] : "hold";
    long n = argc > 2 ? atol(argv[2]) : 1000;
    if (strcmp(mode, "latency") == 0) return latency(n);
    return hold(n);
}
