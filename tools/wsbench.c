/*
 * wsbench - load generator for wsd (and for any WebSocket server speaking the same
 * envelopes, such as tools/bench/ws_echo_node.js).
 *
 *   wsbench MODE [options]     MODE: echo | fanout | direct | connect | idle
 *
 * The main process plans the run, starts the workers (threads, and forked processes
 * when one process could not hold every socket), coordinates the phases through a shared
 * control block (wsbench_worker.h), samples the server's CPU time and memory around the
 * measured window, merges the workers' counters and histograms, and prints a table or
 * one JSON object. Every wait is bounded: the process always ends by itself.
 */
#include "core/wsd.h"
#include "tools/wsbench_hist.h"
#include "tools/wsbench_report.h"
#include "tools/wsbench_sys.h"
#include "tools/wsbench_worker.h"
#include "tools/wsbench_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define MS 1000000LL
#define CONNS_PER_PROC 15000u
#define CONNS_PER_SRC 20000u
#define FD_SLACK 64u
#define POLL_NS (2 * MS)
#define DONE_GRACE_NS (10 * NS)
#define EXIT_GRACE_NS (75 * NS)
#define MEM_SETTLE_MIN_NS (500 * MS)
#define MEM_SETTLE_MAX_NS (5 * NS)

struct plan {
    struct wsbench_opts o;
    bool json;
    uint32_t nworkers;
    uint64_t nofile;
};


static void usage(FILE *f)
{
    fprintf(f,
            "usage: wsbench MODE [options]\n"
            "  MODE: echo | fanout | direct | connect | idle\n"
            "  --url URL          ws:// or wss://HOST:PORT/PATH (default\n"
            "                     ws://127.0.0.1:8080/echo,\n"
            "                     /ws for fanout and direct)\n"
            "  --conns N          connections (echo, idle), subscribers (fanout, direct),\n"
            "                     handshakes to make (connect; 0 = until the time is up)\n"
            "  --inflight K       messages in flight per connection or publisher (1)\n"
            "  --size S           echo payload bytes (32); fanout/direct: pad publishes to S\n"
            "  --duration SEC     measured time (5); --warmup SEC before it (0)\n"
            "  --threads T        worker threads per process (CPUs / 2)\n"
            "  --procs N          processes (auto: one per %u connections)\n"
            "  --cpu LIST         pin worker threads to these CPUs (e.g. 1 or 2-3,5)\n"
            "  --group G          fanout group (bench)\n"
            "  --publishers P     fanout/direct publishers (1)\n"
            "  --rate R           publishes per second over all publishers (0 = flat out)\n"
            "  --concurrency C    connect: cycles at once (32); others: set-ups at once (256)\n"
            "  --src-ips A,B,...  source addresses, round-robin (auto 127.0.0.x when needed)\n"
            "  --server-pid PID   server to measure (PID and its children): CPU, memory\n"
            "  --token T          token sent as Authorization: Bearer T\n"
            "  --jwt-secret S     mint an HS256 token per connection (users PREFIX<i>)\n"
            "  --user-prefix P    prefix of minted user ids (wsb)\n"
            "  --user U           direct: user every send goes to (default: the token's sub)\n"
            "  --setup-timeout S  connection set-up limit in seconds (30)\n"
            "  --raw              plain TCP echo (bench_tcp_echo): S bytes out, S back\n"
            "  --text             echo text frames instead of binary\n"
            "  --json             print one JSON object\n",
            CONNS_PER_PROC);
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX || *s == '-')
        return WSD_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0))
        return WSD_EINVAL;
    *out = v;
    return 0;
}

static int parse_src_ips(const char *s, struct wsbench_opts *o)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", s);
    o->nsrc = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nsrc == WSBENCH_MAX_SRC || inet_pton(AF_INET, t, &o->src[o->nsrc]) != 1)
            return WSD_EINVAL;
        o->nsrc++;
    }
    return o->nsrc > 0 ? 0 : WSD_EINVAL;
}

static int parse_cpus(const char *s, struct wsbench_opts *o)
{
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", s);
    o->ncpus = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        unsigned lo, hi;
        int n = sscanf(t, "%u-%u", &lo, &hi);
        if (n == 1)
            hi = lo;
        if (n < 1 || hi < lo || hi >= 1024)
            return WSD_EINVAL;
        for (unsigned c = lo; c <= hi; c++) {
            if (o->ncpus == WSBENCH_MAX_CPUS)
                return WSD_EINVAL;
            o->cpus[o->ncpus++] = (int)c;
        }
    }
    return o->ncpus > 0 ? 0 : WSD_EINVAL;
}

enum {
    OPT_URL = 256, OPT_CONNS, OPT_INFLIGHT, OPT_SIZE, OPT_DURATION, OPT_WARMUP, OPT_THREADS,
    OPT_PROCS, OPT_CPU, OPT_GROUP, OPT_PUBLISHERS, OPT_RATE, OPT_CONCURRENCY, OPT_SRC,
    OPT_PID, OPT_TOKEN, OPT_SECRET, OPT_PREFIX, OPT_USER, OPT_SETUP, OPT_RAW, OPT_TEXT,
    OPT_JSON, OPT_HELP,
};

static const struct option long_opts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"conns", required_argument, NULL, OPT_CONNS},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"size", required_argument, NULL, OPT_SIZE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"procs", required_argument, NULL, OPT_PROCS},
    {"cpu", required_argument, NULL, OPT_CPU},
    {"group", required_argument, NULL, OPT_GROUP},
    {"publishers", required_argument, NULL, OPT_PUBLISHERS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"src-ips", required_argument, NULL, OPT_SRC},
    {"server-pid", required_argument, NULL, OPT_PID},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"jwt-secret", required_argument, NULL, OPT_SECRET},
    {"user-prefix", required_argument, NULL, OPT_PREFIX},
    {"user", required_argument, NULL, OPT_USER},
    {"setup-timeout", required_argument, NULL, OPT_SETUP},
    {"raw", no_argument, NULL, OPT_RAW},
    {"text", no_argument, NULL, OPT_TEXT},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct raw_args {
    const char *url;
    const char *user;
    int conns_set;
    int conc_set;
};

/* Applies one option. Returns 0, or WSD_EINVAL for a bad value. */
static int apply_opt(struct plan *p, struct raw_args *ra, int c, const char *v)
{
    struct wsbench_opts *o = &p->o;
    uint32_t pid;
    switch (c) {
    case OPT_URL: ra->url = v; return 0;
    case OPT_CONNS: ra->conns_set = 1; return parse_u32(v, &o->conns);
    case OPT_INFLIGHT: return parse_u32(v, &o->inflight);
    case OPT_SIZE: return parse_u32(v, &o->size);
    case OPT_DURATION: return parse_double(v, &o->duration_s);
    case OPT_WARMUP: return parse_double(v, &o->warmup_s);
    case OPT_THREADS: return parse_u32(v, &o->threads);
    case OPT_PROCS: return parse_u32(v, &o->procs);
    case OPT_CPU: return parse_cpus(v, o);
    case OPT_PUBLISHERS: return parse_u32(v, &o->publishers);
    case OPT_RATE: return parse_double(v, &o->rate);
    case OPT_CONCURRENCY: ra->conc_set = 1; return parse_u32(v, &o->concurrency);
    case OPT_SRC: return parse_src_ips(v, o);
    case OPT_SETUP: return parse_double(v, &o->setup_timeout_s);
    case OPT_TOKEN: o->token = v; return 0;
    case OPT_SECRET: o->jwt_secret = v; return 0;
    case OPT_USER: ra->user = v; return strlen(v) < sizeof(o->direct_user) ? 0 : WSD_EINVAL;
    case OPT_RAW: o->raw = true; return 0;
    case OPT_TEXT: o->text = true; return 0;
    case OPT_JSON: p->json = true; return 0;
    case OPT_GROUP:
        return snprintf(o->group, sizeof(o->group), "%s", v) < (int)sizeof(o->group) ? 0
                                                                                    : WSD_EINVAL;
    case OPT_PREFIX:
        return snprintf(o->user_prefix, sizeof(o->user_prefix), "%s", v) <
                       (int)sizeof(o->user_prefix)
                   ? 0
                   : WSD_EINVAL;
    case OPT_PID:
        if (parse_u32(v, &pid) != 0 || pid == 0)
            return WSD_EINVAL;
        o->server_pid = (pid_t)pid;
        return 0;
    default: return WSD_EINVAL;
    }
}

static int parse_mode(const char *s, enum wsbench_mode *mode)
{
    for (int i = WSBENCH_ECHO; i <= WSBENCH_IDLE; i++) {
        if (strcmp(s, wsbench_report_mode_name((enum wsbench_mode)i)) == 0) {
            *mode = (enum wsbench_mode)i;
            return 0;
        }
    }
    return WSD_EINVAL;
}

static void set_defaults(struct plan *p)
{
    struct wsbench_opts *o = &p->o;
    memset(p, 0, sizeof(*p));
    o->inflight = 1;
    o->size = 32;
    o->duration_s = 5;
    o->setup_timeout_s = 30;
    o->publishers = 1;
    o->threads = (uint32_t)WSD_MAX(1, wsbench_sys_ncpu() / 2);
    snprintf(o->group, sizeof(o->group), "bench");
    snprintf(o->user_prefix, sizeof(o->user_prefix), "wsb");
}

/* Mode-dependent defaults for what the command line left unset. */
static void mode_defaults(struct plan *p, struct raw_args *ra)
{
    struct wsbench_opts *o = &p->o;
    bool messaging = o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT;
    if (!ra->url)
        ra->url = messaging ? "ws://127.0.0.1:8080/ws" : "ws://127.0.0.1:8080/echo";
    if (!ra->conns_set)
        o->conns = o->mode == WSBENCH_CONNECT ? 0 : o->mode == WSBENCH_IDLE ? 1000 : 100;
    if (!ra->conc_set)
        o->concurrency = o->mode == WSBENCH_CONNECT ? 32 : 256;
}

static int check_messaging(struct plan *p, struct raw_args *ra)
{
    struct wsbench_opts *o = &p->o;
    char token[1024];
    if (o->conns == 0 || o->publishers == 0) {
        fprintf(stderr, "wsbench: %s needs --conns and --publishers of at least 1\n",
                wsbench_report_mode_name(o->mode));
        return WSD_EINVAL;
    }
    if (o->jwt_secret && wsbench_ws_jwt(token, sizeof(token), o->jwt_secret, "x", 0) < 0) {
        fprintf(stderr, "wsbench: --jwt-secret: bad base64 secret\n");
        return WSD_EINVAL;
    }
    if (o->mode != WSBENCH_DIRECT || o->jwt_secret)
        return 0;
    if (ra->user)
        snprintf(o->direct_user, sizeof(o->direct_user), "%s", ra->user);
    else if (!o->token || wsbench_ws_jwt_sub(o->token, o->direct_user,
                                             sizeof(o->direct_user)) < 0) {
        fprintf(stderr, "wsbench: direct needs --jwt-secret, --user or a --token with a sub\n");
        return WSD_EINVAL;
    }
    return 0;
}

/* True when s can go between JSON quotes as it is (no quote, backslash or control). */
static bool is_json_plain(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

static int check_opts(struct plan *p, struct raw_args *ra)
{
    struct wsbench_opts *o = &p->o;
    if (!is_json_plain(o->group) || !is_json_plain(o->user_prefix) ||
        (ra->user && !is_json_plain(ra->user))) {
        fprintf(stderr, "wsbench: --group, --user and --user-prefix may not hold quotes, "
                        "backslashes or control characters\n");
        return WSD_EINVAL;
    }
    if (wsbench_ws_parse_url(ra->url, &o->url) != 0) {
        fprintf(stderr, "wsbench: bad --url %s (ws:// or wss://HOST:PORT/PATH)\n", ra->url);
        return WSD_EINVAL;
    }
    if (o->inflight == 0 || o->threads == 0 || o->duration_s <= 0 || o->size > (16u << 20)) {
        fprintf(stderr, "wsbench: --inflight, --threads, --duration must be positive and "
                        "--size at most 16 MiB\n");
        return WSD_EINVAL;
    }
    if (o->raw && (o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT || o->url.tls ||
                   (o->mode == WSBENCH_ECHO && o->size == 0))) {
        fprintf(stderr, "wsbench: --raw works with echo (size >= 1), connect and idle, "
                        "without TLS\n");
        return WSD_EINVAL;
    }
    if ((o->mode == WSBENCH_ECHO || o->mode == WSBENCH_IDLE) && o->conns == 0) {
        fprintf(stderr, "wsbench: --conns must be at least 1\n");
        return WSD_EINVAL;
    }
    if (o->mode == WSBENCH_CONNECT && o->concurrency == 0) {
        fprintf(stderr, "wsbench: --concurrency must be at least 1\n");
        return WSD_EINVAL;
    }
    if (o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT)
        return check_messaging(p, ra);
    return 0;
}

static int parse_args(int argc, char **argv, struct plan *p)
{
    struct raw_args ra = {NULL, NULL, 0, 0};
    int c;
    set_defaults(p);
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            usage(stdout);
            exit(0);
        }
        if (c == '?' || apply_opt(p, &ra, c, optarg) != 0) {
            if (c != '?')
                fprintf(stderr, "wsbench: bad value for --%s: %s\n", long_opts[c - OPT_URL].name,
                        optarg);
            fprintf(stderr, "wsbench: see wsbench --help\n");
            return WSD_EINVAL;
        }
    }
    if (optind != argc - 1 || parse_mode(argv[optind], &p->o.mode) != 0) {
        usage(stderr);
        return WSD_EINVAL;
    }
    mode_defaults(p, &ra);
    return check_opts(p, &ra);
}

static int resolve(struct wsbench_opts *o)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(o->url.host, NULL, &hints, &ai);
    if (rc != 0 || !ai) {
        fprintf(stderr, "wsbench: cannot resolve %s: %s\n", o->url.host, gai_strerror(rc));
        return WSD_EINVAL;
    }
    memcpy(&o->dst, ai->ai_addr, sizeof(o->dst));
    o->dst.sin_port = htons(o->url.port);
    freeaddrinfo(ai);
    return 0;
}

static uint64_t total_conns(const struct wsbench_opts *o)
{
    if (o->mode == WSBENCH_CONNECT)
        return o->concurrency;
    if (o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT)
        return (uint64_t)o->conns + o->publishers;
    return o->conns;
}

/* Processes, source addresses and the descriptor budget. */
static int plan_run(struct plan *p)
{
    struct wsbench_opts *o = &p->o;
    uint64_t total = total_conns(o);
    if (wsbench_sys_raise_nofile(&p->nofile) != 0)
        p->nofile = 1024;
    if (o->procs == 0)
        o->procs = (uint32_t)WSD_MAX((uint64_t)1, (total + CONNS_PER_PROC - 1) / CONNS_PER_PROC);
    uint64_t per_proc = (total + o->procs - 1) / o->procs + FD_SLACK + 4u * o->threads;
    if (per_proc > p->nofile) {
        fprintf(stderr, "wsbench: %llu descriptors per process over the limit %llu: "
                        "raise --procs\n", (unsigned long long)per_proc,
                (unsigned long long)p->nofile);
        return WSD_EINVAL;
    }
    bool loopback = (ntohl(o->dst.sin_addr.s_addr) >> 24) == 127;
    if (o->nsrc == 0 && loopback && total > CONNS_PER_SRC) {
        uint64_t n = WSD_MIN((total + CONNS_PER_SRC - 1) / CONNS_PER_SRC, 250);
        for (uint32_t i = 0; i < n; i++)
            o->src[i].s_addr = htonl(0x7f000001u + i);
        o->nsrc = (uint32_t)n;
    } else if (o->nsrc > 0 && total > (uint64_t)o->nsrc * 28000) {
        fprintf(stderr, "wsbench: warning: %llu connections over %u source addresses may "
                        "run out of ports\n", (unsigned long long)total, o->nsrc);
    }
    p->nworkers = o->procs * o->threads;
    return 0;
}

static int64_t now_ns(void)
{
    return wsbench_sys_now_ns();
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {ns / NS, ns % NS};
    nanosleep(&ts, NULL);
}

struct thread_arg {
    const struct wsbench_opts *o;
    struct wsbench_ctl *ctl;
    uint32_t id;
};

static void *thread_main(void *arg)
{
    struct thread_arg *a = arg;
    wsbench_worker_run(a->o, a->ctl, a->id);
    return NULL;
}

/* Runs workers first..first+n-1 as threads of this process; joins them. */
static int run_threads(const struct wsbench_opts *o, struct wsbench_ctl *ctl, uint32_t first,
                       uint32_t n, pthread_t *tids, struct thread_arg *args)
{
    uint32_t started = 0;
    for (; started < n; started++) {
        args[started] = (struct thread_arg){o, ctl, first + started};
        if (pthread_create(&tids[started], NULL, thread_main, &args[started]) != 0)
            break;
    }
    if (started < n) {
        atomic_store(&ctl->phase, WSBENCH_PHASE_ABORT);
        ctl->res[first].errors++;
    }
    return (int)started;
}

struct workers {
    pid_t *pids;       /* procs > 1: one child per process */
    pthread_t *tids;   /* procs == 1: threads of this process */
    struct thread_arg *args;
    uint32_t nthreads;
    uint32_t nprocs;
    uint32_t exited;   /* children reaped */
    bool failed;       /* a child died before the end */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void child_main(const struct wsbench_opts *o, struct wsbench_ctl *ctl, uint32_t proc,
                       pid_t parent)
{
    pthread_t tids[256];
    struct thread_arg args[256];
    /* the parent decides when to stop; and if the parent goes, so does the child */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
        _exit(1);
    uint32_t n = WSD_MIN(o->threads, 256u);
    int started = run_threads(o, ctl, proc * o->threads, n, tids, args);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    _exit(0);
}

static int start_workers(const struct plan *p, struct wsbench_ctl *ctl, struct workers *ws)
{
    const struct wsbench_opts *o = &p->o;
    memset(ws, 0, sizeof(*ws));
    if (o->procs == 1) {
        ws->tids = calloc(o->threads, sizeof(*ws->tids));
        ws->args = calloc(o->threads, sizeof(*ws->args));
        if (!ws->tids || !ws->args)
            return WSD_ENOMEM;
        ws->nthreads = (uint32_t)run_threads(o, ctl, 0, o->threads, ws->tids, ws->args);
        return 0;
    }
    ws->pids = calloc(o->procs, sizeof(*ws->pids));
    if (!ws->pids)
        return WSD_ENOMEM;
    fflush(NULL);
    pid_t self = getpid();
    for (uint32_t i = 0; i < o->procs; i++) {
        pid_t pid = fork();
        if (pid == -1) {
            fprintf(stderr, "wsbench: fork failed: %s\n", strerror(errno));
            atomic_store(&ctl->phase, WSBENCH_PHASE_ABORT);
            ws->failed = true;
            break;
        }
        if (pid == 0)
            child_main(o, ctl, i, self);
        ws->pids[ws->nprocs++] = pid;
    }
    return 0;
}

/* Reaps children that ended; notes one that ended before it was released. */
static void reap(struct workers *ws, bool released)
{
    if (interrupted && !released)
        ws->failed = true;
    for (uint32_t i = 0; i < ws->nprocs; i++) {
        int status;
        if (ws->pids[i] <= 0 || waitpid(ws->pids[i], &status, WNOHANG) != ws->pids[i])
            continue;
        ws->pids[i] = 0;
        ws->exited++;
        if (!released || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ws->failed = true;
    }
}

static void stop_workers(struct workers *ws)
{
    for (uint32_t i = 0; i < ws->nthreads; i++)
        pthread_join(ws->tids[i], NULL);
    int64_t deadline = now_ns() + EXIT_GRACE_NS;
    while (ws->exited < ws->nprocs && now_ns() < deadline) {
        reap(ws, true);
        sleep_ns(10 * MS);
    }
    for (uint32_t i = 0; i < ws->nprocs; i++) {
        if (ws->pids[i] > 0) {
            kill(ws->pids[i], SIGKILL);
            waitpid(ws->pids[i], NULL, 0);
            ws->failed = true;
        }
    }
    free(ws->pids);
    free(ws->tids);
    free(ws->args);
}

/* Waits until every worker counted itself in *counter, the deadline, or a child died. */
static void wait_count(_Atomic uint32_t *counter, uint32_t want, int64_t deadline,
                       struct workers *ws)
{
    while (atomic_load(counter) < want && now_ns() < deadline) {
        reap(ws, false);
        if (ws->failed)
            return;
        sleep_ns(POLL_NS);
    }
}

/* Idle mode: waits until the server's memory stops moving, then samples it. */
static void settle_memory(const struct wsbench_opts *o, struct wsbench_report *r)
{
    uint64_t prev = 0, pss = 0, rss = 0;
    int64_t start = now_ns();
    while (wsbench_sys_server_mem(o->server_pid, &pss, &rss) == 0) {
        int64_t t = now_ns() - start;
        uint64_t diff = pss > prev ? pss - prev : prev - pss;
        if ((t >= MEM_SETTLE_MIN_NS && diff * 200 <= pss) || t >= MEM_SETTLE_MAX_NS)
            break;
        prev = pss;
        sleep_ns(250 * MS);
    }
    r->pss1 = pss;
    r->rss1 = rss;
    r->have_sock = r->have_sock && wsbench_sys_sock_mem(&r->sock1) == 0;
}

/* Sleeps until t while watching for children that die. */
static void sleep_until(int64_t t, struct workers *ws)
{
    while (now_ns() < t) {
        reap(ws, false);
        if (ws->failed)
            return;
        sleep_ns(WSD_MIN(t - now_ns(), 5 * MS));
    }
}

static void measure_window(const struct plan *p, struct wsbench_ctl *ctl, struct workers *ws,
                           struct wsbench_report *r)
{
    const struct wsbench_opts *o = &p->o;
    double cpu0 = 0, cpu1 = 0;
    bool want_cpu = o->server_pid > 0;
    /* without warm-up the window opens at GO, so the first sample is taken just before */
    if (o->warmup_s <= 0)
        r->have_cpu = want_cpu && wsbench_sys_server_cpu(o->server_pid, &cpu0, NULL) == 0;
    int64_t start = now_ns() + (int64_t)(o->warmup_s * NS);
    int64_t end = start + (int64_t)(o->duration_s * NS);
    atomic_store(&ctl->start_ns, start);
    atomic_store(&ctl->end_ns, end);
    atomic_store_explicit(&ctl->phase, WSBENCH_PHASE_GO, memory_order_release);
    if (o->warmup_s > 0) {
        sleep_until(start, ws);
        r->have_cpu = want_cpu && wsbench_sys_server_cpu(o->server_pid, &cpu0, NULL) == 0;
    }
    /* connect mode with a handshake count may finish before the time is up */
    while (now_ns() < end && atomic_load(&ctl->done) < p->nworkers && !ws->failed)
        sleep_until(WSD_MIN(end, now_ns() + POLL_NS), ws);
    int64_t stop = WSD_MIN(now_ns(), end);
    r->have_cpu = r->have_cpu &&
                  wsbench_sys_server_cpu(o->server_pid, &cpu1, &r->server_procs) == 0;
    r->server_cpu_s = cpu1 - cpu0;
    r->seconds = stop > start ? (double)(stop - start) / NS : 0;
    wait_count(&ctl->done, p->nworkers, end + DONE_GRACE_NS, ws);
}

/* False when the run would measure nothing: no connection (or subscriber) is up. */
static bool enough_connected(const struct plan *p, const struct wsbench_ctl *ctl)
{
    uint64_t ok = 0;
    bool subs = p->o.mode == WSBENCH_FANOUT || p->o.mode == WSBENCH_DIRECT;
    if (p->o.mode == WSBENCH_CONNECT)
        return true;
    for (uint32_t i = 0; i < p->nworkers; i++)
        ok += subs ? ctl->res[i].subs_ok : ctl->res[i].conns_ok;
    return ok > 0;
}

static void coordinate(const struct plan *p, struct wsbench_ctl *ctl, struct workers *ws,
                       struct wsbench_report *r)
{
    const struct wsbench_opts *o = &p->o;
    int64_t deadline = now_ns() + (int64_t)(o->setup_timeout_s * NS) + 5 * NS;
    wait_count(&ctl->ready, p->nworkers, deadline, ws);
    if (!ws->failed && !enough_connected(p, ctl)) {
        fprintf(stderr, "wsbench: no %s could be set up; not running\n",
                o->mode == WSBENCH_FANOUT || o->mode == WSBENCH_DIRECT ? "subscriber"
                                                                       : "connection");
        r->aborted = true;
    }
    if (ws->failed || r->aborted) {
        atomic_store(&ctl->phase, WSBENCH_PHASE_ABORT);
        return;
    }
    if (o->mode == WSBENCH_IDLE && r->have_mem)
        settle_memory(o, r);
    measure_window(p, ctl, ws, r);
    atomic_store_explicit(&ctl->phase, ws->failed ? WSBENCH_PHASE_ABORT : WSBENCH_PHASE_RELEASE,
                          memory_order_release);
}

static struct wsbench_ctl *ctl_new(uint32_t nworkers, size_t *len)
{
    *len = sizeof(struct wsbench_ctl) + (size_t)nworkers * sizeof(struct wsbench_result);
    void *m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    struct wsbench_ctl *ctl = m;
    ctl->nworkers = nworkers;
    for (uint32_t i = 0; i < nworkers; i++)
        wsbench_hist_init(&ctl->res[i].hist);
    return ctl;
}

/* Kernel TCP memory once sockets of earlier runs have stopped releasing it (<= 2 s). */
static int settled_sock_mem(uint64_t *bytes)
{
    uint64_t prev = UINT64_MAX;
    for (int i = 0; i < 20; i++) {
        if (wsbench_sys_sock_mem(bytes) != 0)
            return WSD_EIO;
        if (*bytes == prev)
            return 0;
        prev = *bytes;
        sleep_ns(100 * MS);
    }
    return 0;
}

/* Idle mode: the server's memory before any connection exists. */
static void sample_before(const struct wsbench_opts *o, struct wsbench_report *r)
{
    if (o->mode != WSBENCH_IDLE)
        return;
    r->have_mem = o->server_pid > 0 &&
                  wsbench_sys_server_mem(o->server_pid, &r->pss0, &r->rss0) == 0;
    r->have_sock = settled_sock_mem(&r->sock0) == 0;
    if (o->server_pid > 0 && !r->have_mem)
        fprintf(stderr, "wsbench: cannot read /proc/%d/smaps_rollup\n", (int)o->server_pid);
}

int main(int argc, char **argv)
{
    struct plan p;
    struct wsbench_report r;
    struct workers ws;
    size_t ctl_len;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (parse_args(argc, argv, &p) != 0 || resolve(&p.o) != 0 || plan_run(&p) != 0)
        return 2;
    struct wsbench_ctl *ctl = ctl_new(p.nworkers, &ctl_len);
    if (!ctl) {
        fprintf(stderr, "wsbench: mmap failed: %s\n", strerror(errno));
        return 1;
    }
    memset(&r, 0, sizeof(r));
    sample_before(&p.o, &r);
    if (start_workers(&p, ctl, &ws) != 0) {
        fprintf(stderr, "wsbench: out of memory\n");
        return 1;
    }
    coordinate(&p, ctl, &ws, &r);
    stop_workers(&ws);
    r.nworkers = p.nworkers;
    wsbench_report_merge(&r, ctl);
    if (ws.failed)
        snprintf(r.sum.error, sizeof(r.sum.error), "%s",
                 interrupted ? "interrupted" : "a worker process died");
    if (p.json)
        wsbench_report_json(&p.o, &r);
    else
        wsbench_report_table(&p.o, &r);
    munmap(ctl, ctl_len);
    return ws.failed || r.aborted || (r.sum.messages == 0 && p.o.mode != WSBENCH_IDLE) ? 1 : 0;
}
