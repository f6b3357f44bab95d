/* AF_UNIX path names are files: bind creates a socket file (stat sees
 * S_IFSOCK, mode 0777 & ~umask), a second bind of the path is EADDRINUSE,
 * connect to a regular file ECONNREFUSED, unlink frees the name, a
 * renamed socket file still leads to its listener; binding the empty
 * name picks an abstract one ("\0" + five hex digits); MSG_PEEK on a
 * stream leaves the bytes. Output is compared with the same run on Linux. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t addr_of(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static const char *result(int r) { return r == 0 ? "ok" : strerror(errno); }

int main(void) {
    char path[64], moved[64], plain[64];
    snprintf(path, sizeof path, "/tmp/unix-names-%d.sock", getpid());
    snprintf(moved, sizeof moved, "/tmp/unix-names-%d.moved", getpid());
    snprintf(plain, sizeof plain, "/tmp/unix-names-%d.file", getpid());
    umask(022);
    struct sockaddr_un a;
    socklen_t len = addr_of(&a, path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind: %s\n", result(bind(l, (struct sockaddr *)&a, len)));
    struct stat st;
    if (stat(path, &st) == 0)
        printf("stat: socket %d, mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 0777);
    int again = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind the same path: %s\n", result(bind(again, (struct sockaddr *)&a, len)));
    printf("listen: %s\n", result(listen(l, 4)));
    struct sockaddr_un got;
    socklen_t got_len = sizeof got;
    getsockname(l, (struct sockaddr *)&got, &got_len);
    printf("getsockname: %s, %s\n", strcmp(got.sun_path, path) == 0 ? "the path" : got.sun_path,
           got_len == len ? "full length" : "other length");

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect: %s\n", result(connect(c, (struct sockaddr *)&a, len)));
    int s = accept(l, NULL, NULL);
    send(c, "hello", 5, 0);
    char buf[16] = {0};
    ssize_t n = recv(s, buf, 3, MSG_PEEK);
    printf("peek: %zd %.*s\n", n, (int)n, buf);
    n = recv(s, buf, sizeof buf, 0);
    printf("read: %zd %.*s\n", n, (int)n, buf);

    close(open(plain, O_CREAT | O_WRONLY, 0644));
    struct sockaddr_un p;
    socklen_t plen = addr_of(&p, plain);
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect to a regular file: %s\n", result(connect(c2, (struct sockaddr *)&p, plen)));
    printf("bind over a regular file: %s\n", result(bind(c2, (struct sockaddr *)&p, plen)));

    printf("rename: %s\n", result(rename(path, moved)));
    struct sockaddr_un m;
    socklen_t mlen = addr_of(&m, moved);
    int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect to the renamed file: %s\n", result(connect(c3, (struct sockaddr *)&m, mlen)));
    printf("unlink: %s\n", result(unlink(moved)));
    int c4 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect after unlink: %s\n", result(connect(c4, (struct sockaddr *)&m, mlen)));
    printf("bind the freed path: %s\n", result(bind(c4, (struct sockaddr *)&m, mlen)));

    int auto1 = socket(AF_UNIX, SOCK_STREAM, 0), auto2 = socket(AF_UNIX, SOCK_STREAM, 0);
    sa_family_t fam = AF_UNIX;
    printf("autobind: %s", result(bind(auto1, (struct sockaddr *)&fam, sizeof fam)));
    printf(", %s\n", result(bind(auto2, (struct sockaddr *)&fam, sizeof fam)));
    struct sockaddr_un n1, n2;
    socklen_t l1 = sizeof n1, l2 = sizeof n2;
    getsockname(auto1, (struct sockaddr *)&n1, &l1);
    getsockname(auto2, (struct sockaddr *)&n2, &l2);
    int hex = n1.sun_path[0] == 0;
    for (int i = 1; i < 6; i++)
        hex = hex && isxdigit((unsigned char)n1.sun_path[i]);
    printf("autobind names: length %u, abstract hex %d, distinct %d\n", l1, hex,
           memcmp(n1.sun_path, n2.sun_path, 6) != 0);
    unlink(plain);
    unlink(moved);
    return 0;
}
