/* Futexes on MAP_SHARED memory between processes: a parent and a forked
 * child ping-pong 200 times through two process-shared POSIX semaphores
 * (glibc's sem_wait/sem_post sleep and wake with shared futex calls), then
 * the child sleeps in a raw FUTEX_WAIT on a word the parent sets and wakes
 * with FUTEX_WAKE. A futex keyed per process would leave the child asleep
 * forever. Prints only what is the same natively and in Cloister. */
#include <linux/futex.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 200

struct shared {
    sem_t ping, pong;
    int word;
    int count;
};

static long futex(int *addr, int op, int val) {
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

int main(void) {
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED || sem_init(&s->ping, 1, 0) || sem_init(&s->pong, 1, 0)) {
        perror("setup");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        for (int i = 0; i < ROUNDS; i++) {
            if (sem_wait(&s->ping))
                _exit(2);
            s->count++;
            sem_post(&s->pong);
        }
        while (__atomic_load_n(&s->word, __ATOMIC_SEQ_CST) == 0)
            futex(&s->word, FUTEX_WAIT, 0);
        _exit(s->word == 7 ? 0 : 3);
    }
    for (int i = 0; i < ROUNDS; i++) {
        sem_post(&s->ping);
        if (sem_wait(&s->pong))
            return 1;
    }
    __atomic_store_n(&s->word, 7, __ATOMIC_SEQ_CST);
    if (futex(&s->word, FUTEX_WAKE, 1) < 0)
        perror("FUTEX_WAKE");
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    printf("%d rounds through shared semaphores, the child's count: %d\n", ROUNDS, s->count);
    printf("child woken from FUTEX_WAIT, exit status %d\n", WEXITSTATUS(status));
    return 0;
}
