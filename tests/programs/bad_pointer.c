/* Passes a bad pointer to write(2): the LibOS must answer -EFAULT and keep
 * running; then dereferences NULL when asked, which must kill the program
 * with SIGSEGV (exit status 139) and a report naming the address. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    /* volatile: keep the compiler from reasoning about the pointers. */
    const void *volatile low = (const void *)0x10;
    const void *volatile kernel = (const void *)0xffff800000000000UL;
    ssize_t r = write(1, low, 4);
    printf("write(bad pointer) = %zd, errno = %s\n", r, r < 0 ? strerrorname_np(errno) : "none");
    r = write(1, kernel, 4);
    printf("write(kernel pointer) = %zd, errno = %s\n", r, r < 0 ? strerrorname_np(errno) : "none");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "null") == 0) {
        volatile int *p = NULL;
        printf("%d\n", *p);
    }
    return 0;
}
