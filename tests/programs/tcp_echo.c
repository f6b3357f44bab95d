#define _GNU_SOURCE
/* A TCP echo server for the network tests: listens on the port in argv[1],
 * serves argv[2] connections one after another with epoll (non-blocking
 * accept and reads), echoes every byte, then prints how many bytes it
 * echoed and exits 0. A guest-internal client thread also connects over
 * 127.0.0.1 first, to check loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int port;

static void *loopback_client(void *arg) {
    (void)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return (void *)1;
    const char msg[] = "loopback hello";
    char back[sizeof msg] = {0};
    if (write(s, msg, sizeof msg) != sizeof msg) return (void *)2;
    size_t got = 0;
    while (got < sizeof msg) {
        ssize_t n = read(s, back + got, sizeof msg - got);
        if (n <= 0) return (void *)3;
        got += n;
    }
    close(s);
    return memcmp(msg, back, sizeof msg) == 0 ? NULL : (void *)4;
}

int main(int argc, char **argv) {
    port = argc > 1 ? atoi(argv[1]) : 7000;
    int conns = argc > 2 ? atoi(argv[2]) : 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 16) != 0) {
        perror("bind/listen");
        return 2;
    }
    pthread_t t;
    pthread_create(&t, NULL, loopback_client, NULL);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    long echoed = 0;
    int closed = 0;
    char buf[65536];
    printf("listening on %d\n", port);
    fflush(stdout);
    while (closed < conns + 1) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    ssize_t off = 0;
                    while (off < r) {
                        ssize_t w = write(fd, buf + off, r - off);
                        if (w > 0) off += w;
                        else if (w < 0 && errno != EAGAIN) break;
                    }
                    echoed += r;
                } else if (r == 0 || errno != EAGAIN) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                    close(fd);
                    closed++;
                    break;
                } else {
                    break;
                }
            }
        }
    }
    void *ret;
    pthread_join(t, &ret);
    printf("echoed %ld bytes, loopback %s\n", echoed, ret == NULL ? "ok" : "FAILED");
    return ret == NULL ? 0 : 1;
}
