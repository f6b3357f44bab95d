/*
 * Cloister's vDSO: clock_gettime, gettimeofday and time without a system
 * call, as Linux's vDSO serves them. The kernel maps this image and, one
 * page below it, the data page (`vvar`, layout: libos/src/vdso/mod.rs,
 * `VdsoData`) it keeps current. Built by build.sh into vdso.so, which is
 * committed; a test rebuilds it and compares.
 *
 * Clocks: monotonic = ((rdtsc - tsc_base) * ns_per_cycle_fp32) >> 32, the
 * kernel's own clock; realtime = real_base_ns + ((monotonic -
 * real_base_mono) * real_rate_fp32) >> 32. The data page is read under a
 * sequence count (odd while the kernel writes it). Any other clock, or a
 * clock the kernel has not enabled (`enabled` bit 0: monotonic, bit 1:
 * realtime), falls back to the system call.
 */
#include <stdint.h>

struct timespec_k { int64_t tv_sec; int64_t tv_nsec; };
struct timeval_k { int64_t tv_sec; int64_t tv_usec; };

struct vdso_data {
	uint32_t seq;
	uint32_t enabled;
	uint64_t tsc_base;
	uint64_t ns_per_cycle_fp32;
	uint64_t real_base_mono;
	uint64_t real_base_ns;
	uint64_t real_rate_fp32;
};

extern const volatile struct vdso_data vvar __attribute__((visibility("hidden")));

static long sys2(long nr, long a, long b)
{
	long ret;
	__asm__ volatile ("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b)
			  : "rcx", "r11", "memory");
	return ret;
}

static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;
	__asm__ volatile ("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* 0: monotonic, 1: realtime. Returns 0 and the nanoseconds, or -1. */
static int read_ns(int real, uint64_t *out)
{
	for (;;) {
		uint32_t seq = vvar.seq;
		__asm__ volatile ("" ::: "memory");
		if (!(vvar.enabled & (real ? 2u : 1u)))
			return -1;
		if (seq & 1)
			continue;
		uint64_t cycles = rdtsc_ordered() - vvar.tsc_base;
		uint64_t mono = (uint64_t)(((unsigned __int128)cycles * vvar.ns_per_cycle_fp32) >> 32);
		uint64_t ns = mono;
		if (real) {
			uint64_t since = mono > vvar.real_base_mono ? mono - vvar.real_base_mono : 0;
			ns = vvar.real_base_ns +
			     (uint64_t)(((unsigned __int128)since * vvar.real_rate_fp32) >> 32);
		}
		__asm__ volatile ("" ::: "memory");
		if (vvar.seq == seq) {
			*out = ns;
			return 0;
		}
	}
}

static int clock_kind(int id)
{
	switch (id) {
	case 0: case 5: case 11: return 1;       /* REALTIME, REALTIME_COARSE, TAI */
	case 1: case 4: case 6: case 7: return 0; /* MONOTONIC, _RAW, _COARSE, BOOTTIME */
	default: return -1;
	}
}

int __vdso_clock_gettime(int id, struct timespec_k *ts)
{
	uint64_t ns;
	int kind = clock_kind(id);
	if (kind < 0 || read_ns(kind, &ns) < 0)
		return (int)sys2(228, id, (long)ts);
	ts->tv_sec = (int64_t)(ns / 1000000000u);
	ts->tv_nsec = (int64_t)(ns % 1000000000u);
	return 0;
}

int __vdso_gettimeofday(struct timeval_k *tv, void *tz)
{
	uint64_t ns;
	if (tz || read_ns(1, &ns) < 0)
		return (int)sys2(96, (long)tv, (long)tz);
	if (tv) {
		tv->tv_sec = (int64_t)(ns / 1000000000u);
		tv->tv_usec = (int64_t)(ns % 1000000000u / 1000u);
	}
	return 0;
}

int64_t __vdso_time(int64_t *t)
{
	uint64_t ns;
	if (read_ns(1, &ns) < 0)
		return sys2(201, (long)t, 0);
	int64_t s = (int64_t)(ns / 1000000000u);
	if (t)
		*t = s;
	return s;
}

int clock_gettime(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_k *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
int64_t time(int64_t *) __attribute__((weak, alias("__vdso_time")));
