/*
 * wsbench_sys.h - what wsbench reads from the system: the server's CPU time and memory
 * (summed over a process and its direct children, i.e. a master and its workers), the
 * kernel's TCP socket memory, and a few process settings (descriptor limit, pinning).
 */
#ifndef WSD_TOOLS_WSBENCH_SYS_H
#define WSD_TOOLS_WSBENCH_SYS_H

#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds (the clock publishers stamp into messages). */
int64_t wsbench_sys_now_ns(void);

/* CPU time used so far by the calling thread, in nanoseconds. */
int64_t wsbench_sys_thread_cpu_ns(void);

/*
 * Sums the CPU time of pid and of every process whose parent is pid, in seconds (the
 * kernel's process CPU clocks, to the nanosecond; utime + stime from /proc/PID/stat
 * where a clock cannot be read); *nprocs receives how many processes were counted (may be NULL).
 * Returns 0, or WSD_ENOENT when pid does not exist.
 */
int wsbench_sys_server_cpu(pid_t pid, double *seconds, int *nprocs);

/*
 * Sums Pss and Rss (from /proc/PID/smaps_rollup) of pid and its direct children, in
 * bytes. Returns 0, or WSD_ENOENT when pid does not exist or cannot be read.
 */
int wsbench_sys_server_mem(pid_t pid, uint64_t *pss, uint64_t *rss);

/* Kernel TCP socket memory in bytes ("TCP: ... mem" pages in /proc/net/sockstat). */
int wsbench_sys_sock_mem(uint64_t *bytes);

/* Raises the soft RLIMIT_NOFILE to the hard limit; *limit gets the result. Returns 0/EIO. */
int wsbench_sys_raise_nofile(uint64_t *limit);

/* Pins the calling thread to cpu. Returns 0 or WSD_EIO. */
int wsbench_sys_pin(int cpu);

/* Number of online CPUs (at least 1). */
int wsbench_sys_ncpu(void);

#endif
