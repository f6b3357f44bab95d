/* A QEMU TCG plugin (QEMU 7.2, plugin API version 1) that counts how often
 * each translation block runs, for exact instruction profiles of a guest
 * (docs/PERFORMANCE.md, "Counting instructions per request"). At exit it
 * writes one line per block: `PC INSNS EXECUTIONS` (hex, decimal, decimal)
 * to `out=FILE` (default /tmp/prof.out).
 *
 * Build: gcc -O2 -shared -fPIC -o libtbcount.so tb_count.c
 * Use:   qemu-system-x86_64 -plugin ./libtbcount.so,out=FILE ...
 *
 * Declares the few plugin functions it uses itself (Debian ships no
 * qemu-plugin.h); a block retranslated at the same PC and length adds to
 * the same counter. Counters are added inline without atomics: exact on one
 * vCPU, close on several. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *), void *userdata);

#define CAP (1u << 22)
struct ent { uint64_t pc; uint64_t n; uint64_t count; };
static struct ent *tab;
static const char *out = "/tmp/prof.out";

static struct ent *get(uint64_t pc, uint64_t n) {
    uint64_t h = (pc * 0x9E3779B97F4A7C15ull ^ n) & (CAP - 1);
    for (;;) {
        struct ent *e = &tab[h];
        if (e->n == 0) { e->pc = pc; e->n = n; return e; }
        if (e->pc == pc && e->n == n) return e;
        h = (h + 1) & (CAP - 1);
    }
}
static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    struct ent *e = get(qemu_plugin_tb_vaddr(tb), qemu_plugin_tb_n_insns(tb));
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &e->count, 1);
}
static void done(qemu_plugin_id_t id, void *p) {
    FILE *f = fopen(out, "w");
    for (uint32_t i = 0; i < CAP; i++)
        if (tab[i].count) fprintf(f, "%lx %lu %lu\n", tab[i].pc, tab[i].n, tab[i].count);
    fclose(f);
}
__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    for (int i = 0; i < argc; i++) if (!strncmp(argv[i], "out=", 4)) out = argv[i] + 4;
    tab = calloc(CAP, sizeof *tab);
    qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
    qemu_plugin_register_atexit_cb(id, done, NULL);
    return 0;
}
