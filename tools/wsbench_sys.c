/* wsbench_sys.c - /proc readers and process settings for wsbench. */
#include "tools/wsbench_sys.h"

#include "core/wsd.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t wsbench_sys_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wsbench_sys_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == -1)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads a small file whole into buf (NUL-terminated). Returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    size_t have = 0;
    while (have + 1 < cap) {
        ssize_t n = read(fd, buf + have, cap - 1 - have);
        if (n == -1)
            break;
        if (n == 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    buf[have] = '\0';
    return (ssize_t)have;
}

/* Parses ppid, utime and stime out of /proc/PID/stat. Returns 0 or -1. */
static int read_stat(pid_t pid, pid_t *ppid, unsigned long long *ticks)
{
    char path[64];
    char buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ") ": field 3 state, 4 ppid, ..., 14 utime, 15 stime */
    char state;
    int pp;
    unsigned long long ut, st;
    if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &pp, &ut,
               &st) != 4)
        return -1;
    *ppid = pp;
    *ticks = ut + st;
    return 0;
}

/* Calls fn for pid and every process whose parent is pid. Returns how many, 0 if none. */
static int for_tree(pid_t pid, void (*fn)(pid_t, void *), void *arg)
{
    pid_t ppid;
    unsigned long long ticks;
    if (read_stat(pid, &ppid, &ticks) != 0)
        return 0;
    fn(pid, arg);
    int count = 1;
    DIR *d = opendir("/proc");
    if (!d)
        return count;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t child = (pid_t)atoi(e->d_name);
        if (child == pid || read_stat(child, &ppid, &ticks) != 0 || ppid != pid)
            continue;
        fn(child, arg);
        count++;
    }
    closedir(d);
    return count;
}

/*
 * CPU time of pid in seconds: the kernel's process CPU clock (every thread, living or
 * exited, to the nanosecond), or utime + stime from /proc/PID/stat (in clock ticks of
 * 10 ms) where that clock cannot be read. Ticks would add up to 1 % of noise to a 2 s
 * window; the clock adds none.
 */
static double process_cpu_seconds(pid_t pid)
{
    clockid_t clock;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &ts) == 0)
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    pid_t ppid;
    unsigned long long ticks = 0;
    if (read_stat(pid, &ppid, &ticks) != 0)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(hz > 0 ? hz : 100);
}

static void add_cpu(pid_t pid, void *arg)
{
    *(double *)arg += process_cpu_seconds(pid);
}

int wsbench_sys_server_cpu(pid_t pid, double *seconds, int *nprocs)
{
    double sum = 0;
    int n = for_tree(pid, add_cpu, &sum);
    if (nprocs)
        *nprocs = n;
    if (n == 0)
        return WSD_ENOENT;
    *seconds = sum;
    return 0;
}

struct mem_sum {
    uint64_t pss;
    uint64_t rss;
    bool failed;
};

/* Value in kB of the smaps_rollup line starting with name, in bytes. */
static uint64_t rollup_field(const char *buf, const char *name)
{
    const char *p = buf;
    size_t nl = strlen(name);
    while ((p = strstr(p, name)) != NULL) {
        if (p == buf || p[-1] == '\n')
            return strtoull(p + nl, NULL, 10) * 1024;
        p += nl;
    }
    return 0;
}

static void add_mem(pid_t pid, void *arg)
{
    struct mem_sum *m = arg;
    char path[64];
    char buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0) {
        m->failed = true;
        return;
    }
    m->pss += rollup_field(buf, "Pss:");
    m->rss += rollup_field(buf, "Rss:");
}

int wsbench_sys_server_mem(pid_t pid, uint64_t *pss, uint64_t *rss)
{
    struct mem_sum m = {0, 0, false};
    if (for_tree(pid, add_mem, &m) == 0 || m.failed)
        return WSD_ENOENT;
    *pss = m.pss;
    *rss = m.rss;
    return 0;
}

int wsbench_sys_sock_mem(uint64_t *bytes)
{
    char buf[2048];
    if (read_small("/proc/net/sockstat", buf, sizeof(buf)) <= 0)
        return WSD_EIO;
    const char *tcp = strstr(buf, "\nTCP:");
    const char *mem = tcp ? strstr(tcp, " mem ") : NULL;
    if (!mem)
        return WSD_EIO;
    long page = sysconf(_SC_PAGESIZE);
    *bytes = strtoull(mem + 5, NULL, 10) * (uint64_t)(page > 0 ? page : 4096);
    return 0;
}

int wsbench_sys_raise_nofile(uint64_t *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return WSD_EIO;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            return WSD_EIO;
    }
    *limit = (uint64_t)rl.rlim_cur;
    return 0;
}

int wsbench_sys_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? 0 : WSD_EIO;
}

int wsbench_sys_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
