/*
 * config.c - the configuration file.
 *
 * One static table (keys[] below) describes every key: its name, where it lives in
 * struct config, its range, its default as written in a file, whether its feature is
 * still pending, whether a change needs a restart, and the function that parses its
 * values. config_init() parses each default through that same function, so the table is
 * the single source of defaults; freeing, comparison, range checks and the pending list
 * all walk the table.
 *
 * Text fields whose value equals the default point at the default's static text, so
 * config_init() allocates nothing; config_fini() knows not to free those.
 */
#include "core/config.h"
#include "core/wsd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MINUTE 60
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define YEAR (365 * DAY)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define CONFIG_MAX_FILE (1024 * 1024) /* a longer file is refused */
#define MAX_TOKENS (1 + CONFIG_MAX_LIST) /* the key and its values */
#define MAX_KEYS 96
#define MAX_PATTERN 128 /* group names are at most 128 bytes (wsd-protocol(7)) */

/* Key flags. */
#define KEY_PENDING 1u /* the feature is not built yet: listed by config_pending_keys() */
#define KEY_RESTART 2u /* a HUP does not apply a change; a restart does */

enum key_type {
    KT_INT,        /* int */
    KT_U32,        /* uint32_t */
    KT_I64,        /* int64_t */
    KT_U64,        /* uint64_t */
    KT_BOOL,       /* bool */
    KT_STR,        /* char *, a default points at the table's text */
    KT_LIST,       /* char *[CONFIG_MAX_LIST] at off, size_t count at aux */
    KT_CIDRS,      /* struct config_cidr[CONFIG_MAX_LIST] at off, size_t count at aux */
    KT_LISTEN,     /* the plain entries of listen[] */
    KT_TLS_LISTEN, /* the TLS entries of listen[] */
    KT_WORKERS,    /* workers and workers_auto */
    KT_SECRET,     /* uint8_t * at off, size_t length at aux */
    KT_KEY32,      /* uint8_t[32] at off, bool at aux */
    KT_GROUPS,     /* group_rules[] at off, size_t count at aux */
};

/* How a number is written: plain, with a time suffix, or with a size suffix. */
enum unit { UNIT_COUNT, UNIT_SECONDS, UNIT_BYTES };

struct parse {
    struct config *c;
    const char *name; /* file name in messages */
    unsigned line;
    char *err;
    bool listen_given;   /* a listen/tls_listen line replaced the default list */
    bool seen[MAX_KEYS]; /* keys given in this text, by table index */
};

struct key;
typedef int (*key_parse_fn)(struct parse *p, const struct key *k, char **v, size_t n);

struct key {
    const char *name;
    enum key_type type;
    size_t off;          /* offsetof the field */
    size_t aux;          /* offsetof the count or flag field that goes with it */
    int64_t min;         /* numbers: range; text: length range */
    int64_t max;
    unsigned flags;      /* KEY_PENDING, KEY_RESTART */
    key_parse_fn parse;  /* the values of one line into the field */
    const char *def;     /* default as written in a file; NULL = unset */
    const char *choices; /* "a|b|c" for parse_choice */
};

/* ---- messages ---------------------------------------------------------------------- */

static int fail(struct parse *p, const char *fmt, ...) WSD_PRINTF(2, 3);

/* Writes "NAME:LINE: message" into the error buffer. Returns WSD_EINVAL. */
static int fail(struct parse *p, const char *fmt, ...)
{
    int n = snprintf(p->err, CONFIG_ERR_LEN, "%s:%u: ", p->name, p->line);
    if (n < 0 || n >= CONFIG_ERR_LEN)
        return WSD_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, CONFIG_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    return WSD_EINVAL;
}

static int fail_nomem(struct parse *p)
{
    fail(p, "out of memory");
    return WSD_ENOMEM;
}

static int want_one(struct parse *p, const struct key *k, size_t n)
{
    if (n == 0)
        return fail(p, "%s: expected a value", k->name);
    if (n > 1)
        return fail(p, "%s: expected one value, got %zu (quote a value that contains spaces)",
                    k->name, n);
    return 0;
}

static void *field(struct config *c, size_t off)
{
    return (char *)c + off;
}

static const void *cfield(const struct config *c, size_t off)
{
    return (const char *)c + off;
}

/* ---- numbers ----------------------------------------------------------------------- */

enum { SCAN_OK, SCAN_BAD, SCAN_OVERFLOW };

static uint64_t unit_multiplier(enum unit u, const char *suffix)
{
    static const char seconds[] = "smhd";
    static const uint64_t seconds_mult[] = {1, MINUTE, HOUR, DAY};
    static const char bytes[] = "kmg";
    static const uint64_t bytes_mult[] = {KIB, MIB, GIB};

    if (suffix[0] == '\0')
        return 1;
    if (suffix[1] != '\0')
        return 0;
    if (u == UNIT_SECONDS && strchr(seconds, suffix[0]) != NULL)
        return seconds_mult[strchr(seconds, suffix[0]) - seconds];
    if (u == UNIT_BYTES && strchr(bytes, tolower((unsigned char)suffix[0])) != NULL)
        return bytes_mult[strchr(bytes, tolower((unsigned char)suffix[0])) - bytes];
    return 0;
}

/* Reads decimal digits and an optional unit suffix. */
static int number_scan(const char *s, enum unit u, uint64_t *out)
{
    uint64_t x = 0;
    bool overflow = false;

    if (!isdigit((unsigned char)*s))
        return SCAN_BAD;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            x = x * 10 + d;
    }
    uint64_t mult = unit_multiplier(u, s);
    if (mult == 0)
        return SCAN_BAD;
    if (overflow || x > UINT64_MAX / mult)
        return SCAN_OVERFLOW;
    *out = x * mult;
    return SCAN_OK;
}

static const char *unit_what(enum unit u, int64_t min)
{
    switch (u) {
    case UNIT_SECONDS:
        return min >= 1 ? "a positive number of seconds" : "a number of seconds";
    case UNIT_BYTES:
        return "a size in bytes";
    default:
        return min >= 1 ? "a positive integer" : "a non-negative integer";
    }
}

/* "30 seconds", "64", "16m" (a size is shown with its largest exact suffix). */
static void amount_format(char *out, size_t cap, enum unit u, int64_t v)
{
    if (u == UNIT_SECONDS) {
        snprintf(out, cap, "%lld seconds", (long long)v);
    } else if (u == UNIT_BYTES && v > 0 && v % GIB == 0) {
        snprintf(out, cap, "%lldg", (long long)(v / GIB));
    } else if (u == UNIT_BYTES && v > 0 && v % MIB == 0) {
        snprintf(out, cap, "%lldm", (long long)(v / MIB));
    } else if (u == UNIT_BYTES && v > 0 && v % KIB == 0) {
        snprintf(out, cap, "%lldk", (long long)(v / KIB));
    } else {
        snprintf(out, cap, "%lld%s", (long long)v, u == UNIT_BYTES ? " bytes" : "");
    }
}

/* Parses s as a number of unit u within [min, max]; label starts the message. */
static int number_get(struct parse *p, const char *label, enum unit u, int64_t min,
                      int64_t max, const char *s, int64_t *out)
{
    char bound[48];
    uint64_t x = 0;
    int rc = number_scan(s, u, &x);

    if (rc == SCAN_BAD || (rc == SCAN_OK && x == 0 && min == 1))
        return fail(p, "%s: expected %s, got \"%.80s\"", label, unit_what(u, min), s);
    if (rc == SCAN_OVERFLOW || x > (uint64_t)max) {
        amount_format(bound, sizeof(bound), u, max);
        return fail(p, "%s: expected at most %s, got \"%.80s\"", label, bound, s);
    }
    if ((int64_t)x < min) {
        amount_format(bound, sizeof(bound), u, min);
        return fail(p, "%s: expected at least %s, got \"%.80s\"", label, bound, s);
    }
    *out = (int64_t)x;
    return 0;
}

static void number_store(struct config *c, const struct key *k, int64_t v)
{
    switch (k->type) {
    case KT_INT: *(int *)field(c, k->off) = (int)v; break;
    case KT_U32: *(uint32_t *)field(c, k->off) = (uint32_t)v; break;
    case KT_I64: *(int64_t *)field(c, k->off) = v; break;
    case KT_U64: *(uint64_t *)field(c, k->off) = (uint64_t)v; break;
    default: WSD_BUG_ON(true);
    }
}

static bool number_load(const struct config *c, const struct key *k, int64_t *v)
{
    switch (k->type) {
    case KT_INT: *v = *(const int *)cfield(c, k->off); return true;
    case KT_U32: *v = *(const uint32_t *)cfield(c, k->off); return true;
    case KT_I64: *v = *(const int64_t *)cfield(c, k->off); return true;
    case KT_U64:
        *v = (int64_t)WSD_MIN(*(const uint64_t *)cfield(c, k->off), (uint64_t)INT64_MAX);
        return true;
    default: return false;
    }
}

static int parse_number(struct parse *p, const struct key *k, char **v, size_t n, enum unit u)
{
    int64_t x = 0;
    int rc = want_one(p, k, n);

    if (rc == 0)
        rc = number_get(p, k->name, u, k->min, k->max, v[0], &x);
    if (rc == 0)
        number_store(p->c, k, x);
    return rc;
}

static int parse_count(struct parse *p, const struct key *k, char **v, size_t n)
{
    return parse_number(p, k, v, n, UNIT_COUNT);
}

static int parse_seconds(struct parse *p, const struct key *k, char **v, size_t n)
{
    return parse_number(p, k, v, n, UNIT_SECONDS);
}

static int parse_size(struct parse *p, const struct key *k, char **v, size_t n)
{
    return parse_number(p, k, v, n, UNIT_BYTES);
}

/* ---- switches, choices, text ------------------------------------------------------- */

static int parse_bool(struct parse *p, const struct key *k, char **v, size_t n)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};
    int rc = want_one(p, k, n);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < WSD_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v[0], yes[i]) == 0 || strcasecmp(v[0], no[i]) == 0) {
            *(bool *)field(p->c, k->off) = strcasecmp(v[0], yes[i]) == 0;
            return 0;
        }
    }
    return fail(p, "%s: expected on or off, got \"%.80s\"", k->name, v[0]);
}

static void str_free(const struct key *k, char *s)
{
    if (s != k->def)
        free(s);
}

/* Stores v: the default's own text when equal to it, NULL when empty and unset by default. */
static int str_set(struct parse *p, const struct key *k, const char *v)
{
    char **slot = field(p->c, k->off);
    char *s = NULL;

    if (k->def != NULL && strcmp(v, k->def) == 0)
        s = (char *)k->def;
    else if (k->def != NULL || v[0] != '\0')
        s = strdup(v);
    if (s == NULL && (k->def != NULL || v[0] != '\0'))
        return fail_nomem(p);
    str_free(k, *slot);
    *slot = s;
    return 0;
}

static int str_check_len(struct parse *p, const struct key *k, const char *v)
{
    size_t len = strlen(v);

    if (len == 0 && k->min > 0 && k->def != NULL)
        return fail(p, "%s: expected a non-empty value", k->name);
    if ((int64_t)len > k->max)
        return fail(p, "%s: expected at most %lld bytes, got %zu", k->name, (long long)k->max,
                    len);
    return 0;
}

static int parse_str(struct parse *p, const struct key *k, char **v, size_t n)
{
    int rc = want_one(p, k, n);

    if (rc == 0)
        rc = str_check_len(p, k, v[0]);
    return rc != 0 ? rc : str_set(p, k, v[0]);
}

static int parse_choice(struct parse *p, const struct key *k, char **v, size_t n)
{
    int rc = want_one(p, k, n);
    size_t len;

    if (rc != 0)
        return rc;
    len = strlen(v[0]);
    for (const char *c = k->choices; len > 0 && c != NULL; c = strchr(c, '|')) {
        c += *c == '|';
        if (strncmp(c, v[0], len) == 0 && (c[len] == '|' || c[len] == '\0'))
            return str_set(p, k, v[0]);
    }
    return fail(p, "%s: expected %s, got \"%.80s\"", k->name, k->choices, v[0]);
}

static bool route_ok(const char *s, bool may_be_empty)
{
    if (s == NULL || s[0] == '\0')
        return may_be_empty;
    return s[0] == '/' && strpbrk(s, " \t?#") == NULL;
}

/* A route: a path starting with '/'; echo_path (min 0) may also be empty (off). */
static int parse_route(struct parse *p, const struct key *k, char **v, size_t n)
{
    int rc = want_one(p, k, n);

    if (rc == 0)
        rc = str_check_len(p, k, v[0]);
    if (rc == 0 && !route_ok(v[0], k->min == 0))
        rc = fail(p, "%s: expected a path starting with '/'%s, got \"%.80s\"", k->name,
                  k->min == 0 ? " (or \"\" for off)" : "", v[0]);
    return rc != 0 ? rc : str_set(p, k, v[0]);
}

/* 1 to 7 decimal digits, value at most max. */
static bool small_uint(const char *s, long max, long *out)
{
    long v = 0;
    size_t i = 0;

    for (; isdigit((unsigned char)s[i]) && i < 7; i++)
        v = v * 10 + (s[i] - '0');
    *out = v;
    return i > 0 && s[i] == '\0' && v <= max;
}

static bool port_ok(const char *s, int *port)
{
    long v = 0;
    bool ok = small_uint(s, 65535, &v) && v >= 1;

    *port = (int)v;
    return ok;
}

static bool host_char_ok(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

/* "redis://HOST:PORT[/DB]" with HOST a name, an IPv4 address or [IPv6]. */
static bool redis_url_ok(const char *s)
{
    const char *host = s + strlen("redis://");
    bool v6 = host[0] == '[';
    const char *end = v6 ? strchr(host, ']') : host + strcspn(host, ":/");
    char tail[16];
    long db = 0;
    int port = 0;

    if (end == NULL || end == host + v6)
        return false;
    for (const char *h = host + v6; h < end; h++) {
        if (!host_char_ok(*h) && !(v6 && *h == ':'))
            return false;
    }
    end += v6;
    if (*end != ':' || strlen(end + 1) >= sizeof(tail))
        return false;
    snprintf(tail, sizeof(tail), "%s", end + 1);
    char *slash = strchr(tail, '/');
    if (slash != NULL) {
        *slash = '\0';
        if (!small_uint(slash + 1, 1000000, &db))
            return false;
    }
    return port_ok(tail, &port);
}

static int parse_store(struct parse *p, const struct key *k, char **v, size_t n)
{
    int rc = want_one(p, k, n);
    bool ok;

    if (rc != 0)
        return rc;
    if (strncmp(v[0], "lmdb:", 5) == 0)
        ok = v[0][5] != '\0';
    else
        ok = strncmp(v[0], "redis://", 8) == 0 && redis_url_ok(v[0]);
    if (!ok)
        return fail(p, "%s: expected lmdb:DIR or redis://HOST:PORT[/DB], got \"%.80s\"",
                    k->name, v[0]);
    rc = str_check_len(p, k, v[0]);
    return rc != 0 ? rc : str_set(p, k, v[0]);
}

/* ---- lists ------------------------------------------------------------------------- */

/* A group-name pattern: an exact name, a prefix ending in '*', or "*" alone. */
static bool pattern_ok(const char *s)
{
    size_t len = strlen(s);
    const char *star = strchr(s, '*');

    return len > 0 && len <= MAX_PATTERN && (star == NULL || star == s + len - 1);
}

/* Replaces the list at k with copies of v[0..n). */
static int list_set(struct parse *p, const struct key *k, char **v, size_t n)
{
    char **list = field(p->c, k->off);
    size_t *count = field(p->c, k->aux);
    char *copy[CONFIG_MAX_LIST];

    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(v[i]);
        if (copy[i] == NULL) {
            while (i > 0)
                free(copy[--i]);
            return fail_nomem(p);
        }
    }
    for (size_t i = 0; i < *count; i++) {
        free(list[i]);
        list[i] = NULL;
    }
    memcpy(list, copy, n * sizeof(copy[0]));
    *count = n;
    return 0;
}

static int parse_patterns(struct parse *p, const struct key *k, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!pattern_ok(v[i]))
            return fail(p, "%s: expected group-name patterns (a name, or a prefix ending in "
                        "'*', at most %d bytes), got \"%.80s\"", k->name, MAX_PATTERN, v[i]);
    }
    return list_set(p, k, v, n);
}

static int parse_words(struct parse *p, const struct key *k, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i][0] == '\0' || (int64_t)strlen(v[i]) > k->max)
            return fail(p, "%s: expected non-empty values of at most %lld bytes, got \"%.80s\"",
                        k->name, (long long)k->max, v[i]);
    }
    return list_set(p, k, v, n);
}

static void prefix_clear(uint8_t *addr, size_t len, int prefix)
{
    for (size_t i = 0; i < len; i++) {
        int keep = prefix - (int)i * 8;
        if (keep <= 0)
            addr[i] = 0;
        else if (keep < 8)
            addr[i] &= (uint8_t)(0xff << (8 - keep));
    }
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* "ADDR" or "ADDR/PREFIX"; an IPv4-mapped IPv6 range becomes the IPv4 range. */
static int cidr_parse(const char *s, struct config_cidr *out)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
    long max, prefix = 0;

    memset(out, 0, sizeof(*out));
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, host, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -1;
    max = out->family == AF_INET ? 32 : 128;
    if (slash != NULL && !small_uint(slash + 1, max, &prefix))
        return -1;
    out->prefix = (int)(slash != NULL ? prefix : max);
    if (out->family == AF_INET6 && out->prefix >= 96 && memcmp(out->addr, v4mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix -= 96;
    }
    prefix_clear(out->addr, sizeof(out->addr), out->prefix);
    return 0;
}

static int parse_cidrs(struct parse *p, const struct key *k, char **v, size_t n)
{
    struct config_cidr tmp[CONFIG_MAX_LIST];

    for (size_t i = 0; i < n; i++) {
        if (cidr_parse(v[i], &tmp[i]) != 0)
            return fail(p, "%s: expected addresses or CIDR ranges such as 10.0.0.0/8 or "
                        "::1/128, got \"%.80s\"", k->name, v[i]);
    }
    memcpy(field(p->c, k->off), tmp, n * sizeof(tmp[0]));
    *(size_t *)field(p->c, k->aux) = n;
    return 0;
}

/* ---- listeners and workers --------------------------------------------------------- */

/* "IP:PORT", "[IPv6]:PORT" or "*:PORT" (= 0.0.0.0); no name lookup. */
static int listen_parse(const char *s, struct config_listen *l)
{
    const char *colon = strrchr(s, ':');
    char host[INET6_ADDRSTRLEN];
    size_t hl = colon != NULL ? (size_t)(colon - s) : 0;
    int port = 0;
    bool v6 = s[0] == '[';

    memset(l, 0, sizeof(*l));
    if (colon == NULL || strlen(s) >= sizeof(l->text) || !port_ok(colon + 1, &port))
        return -1;
    if (v6 && (hl < 3 || s[hl - 1] != ']'))
        return -1;
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(v6 ? hl - 2 : hl), s + v6);
    snprintf(l->text, sizeof(l->text), "%s", s);
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l->addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        l->addr_len = sizeof(*a6);
        return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)&l->addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    l->addr_len = sizeof(*a4);
    return inet_pton(AF_INET, strcmp(host, "*") == 0 ? "0.0.0.0" : host, &a4->sin_addr) == 1
               ? 0
               : -1;
}

static bool listen_same_addr(const struct config_listen *a, const struct config_listen *b)
{
    return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

/* listen and tls_listen: the first such line of a text replaces the list, later ones add. */
static int parse_listen(struct parse *p, const struct key *k, char **v, size_t n)
{
    struct config *c = p->c;
    struct config_listen l;
    int rc = want_one(p, k, n);

    if (rc != 0)
        return rc;
    if (listen_parse(v[0], &l) != 0)
        return fail(p, "%s: expected IP:PORT, [IPv6]:PORT or *:PORT with a port from 1 to "
                    "65535, got \"%.80s\"", k->name, v[0]);
    l.tls = k->type == KT_TLS_LISTEN;
    if (!p->listen_given) {
        c->num_listen = 0;
        p->listen_given = true;
    }
    for (size_t i = 0; i < c->num_listen; i++) {
        if (listen_same_addr(&c->listen[i], &l))
            return fail(p, "%s: %s is already a listener", k->name, v[0]);
    }
    if (c->num_listen == CONFIG_MAX_LISTEN)
        return fail(p, "%s: too many listeners (at most %d)", k->name, CONFIG_MAX_LISTEN);
    c->listen[c->num_listen++] = l;
    return 0;
}

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (int)WSD_MIN(n, (long)CONFIG_MAX_WORKERS);
}

static int parse_workers(struct parse *p, const struct key *k, char **v, size_t n)
{
    uint64_t x = 0;
    int rc = want_one(p, k, n);

    if (rc != 0)
        return rc;
    if (strcmp(v[0], "auto") == 0) {
        p->c->workers = cpu_count();
        p->c->workers_auto = true;
        return 0;
    }
    if (number_scan(v[0], UNIT_COUNT, &x) != SCAN_OK || x < (uint64_t)k->min ||
        x > (uint64_t)k->max)
        return fail(p, "%s: expected auto or a number from %lld to %lld, got \"%.80s\"",
                    k->name, (long long)k->min, (long long)k->max, v[0]);
    p->c->workers = (int)x;
    p->c->workers_auto = false;
    return 0;
}

/* ---- keys and groups --------------------------------------------------------------- */

static int b64_value(char ch)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *pos = ch != '\0' ? strchr(std, ch) : NULL;

    if (pos != NULL)
        return (int)(pos - std);
    return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

/* Standard or URL alphabet, padding optional; unused trailing bits must be zero. */
static int b64_decode(const char *s, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t len = strlen(s), n = len, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (n > 0 && s[n - 1] == '=')
        n--;
    if (len - n > 2 || (len != n && len % 4 != 0) || n % 4 == 1)
        return -1;
    if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    *out_len = o;
    return 0;
}

static void secret_free(uint8_t *s, size_t len)
{
    if (s != NULL)
        explicit_bzero(s, len);
    free(s);
}

/* Raw bytes, or "base64:..." decoded. Messages never show the secret. */
static int parse_secret(struct parse *p, const struct key *k, char **v, size_t n)
{
    uint8_t **slot = field(p->c, k->off);
    size_t *slot_len = field(p->c, k->aux);
    size_t len = 0;
    int rc = want_one(p, k, n);

    if (rc != 0)
        return rc;
    uint8_t *s = malloc(strlen(v[0]) + 1);
    if (s == NULL)
        return fail_nomem(p);
    if (strncmp(v[0], "base64:", 7) != 0) {
        len = strlen(v[0]);
        memcpy(s, v[0], len);
    } else if (b64_decode(v[0] + 7, s, strlen(v[0]), &len) != 0) {
        rc = fail(p, "%s: invalid base64 after \"base64:\"", k->name);
    }
    if (rc == 0 && ((int64_t)len < k->min || (int64_t)len > k->max))
        rc = fail(p, "%s: expected a secret of %lld to %lld bytes, got %zu", k->name,
                  (long long)k->min, (long long)k->max, len);
    if (rc != 0) {
        secret_free(s, strlen(v[0]) + 1);
        return rc;
    }
    s[len] = '\0';
    secret_free(*slot, *slot_len);
    *slot = s;
    *slot_len = len;
    return 0;
}

static int parse_key32(struct parse *p, const struct key *k, char **v, size_t n)
{
    uint8_t buf[66];
    size_t len = 0;
    int rc = want_one(p, k, n);

    if (rc != 0)
        return rc;
    if (strlen(v[0]) > 88 || b64_decode(v[0], buf, sizeof(buf), &len) != 0)
        return fail(p, "%s: expected the base64 of a 32-byte public key, got \"%.80s\"",
                    k->name, v[0]);
    if (len != 32)
        return fail(p, "%s: expected the base64 of a 32-byte public key, got %zu bytes",
                    k->name, len);
    memcpy(field(p->c, k->off), buf, 32);
    *(bool *)field(p->c, k->aux) = true;
    return 0;
}

static const struct key *key_find(const char *name);

/* One "history_size=N" or "history_ttl=S" option of a group line. */
static int group_option(struct parse *p, const char *opt, struct config_group_rule *r)
{
    static const char *const names[] = {"history_size", "history_ttl"};
    static const enum unit units[] = {UNIT_COUNT, UNIT_SECONDS};
    int64_t *slots[] = {&r->history_size, &r->history_ttl};
    const char *eq = strchr(opt, '=');
    size_t nl = eq != NULL ? (size_t)(eq - opt) : strlen(opt);
    char label[40];

    for (size_t i = 0; i < WSD_ARRAY_LEN(names); i++) {
        if (eq == NULL || strlen(names[i]) != nl || strncmp(opt, names[i], nl) != 0)
            continue;
        const struct key *k = key_find(names[i]);
        if (*slots[i] != -1)
            return fail(p, "group: %s given twice", names[i]);
        snprintf(label, sizeof(label), "group: %s", names[i]);
        return number_get(p, label, units[i], k->min, k->max, eq + 1, slots[i]);
    }
    return fail(p, "group: unknown option \"%.*s\" (expected history_size=N or "
                "history_ttl=SECONDS)", (int)WSD_MIN(nl, 64), opt);
}

/* "group PATTERN [history_size=N] [history_ttl=S]": appended in order. */
static int parse_group(struct parse *p, const struct key *k, char **v, size_t n)
{
    struct config *c = p->c;
    struct config_group_rule r = {NULL, -1, -1};

    if (n == 0)
        return fail(p, "%s: expected a group-name pattern and history_size=N or "
                    "history_ttl=SECONDS", k->name);
    if (!pattern_ok(v[0]))
        return fail(p, "%s: expected a group-name pattern (a name, or a prefix ending in '*', "
                    "at most %d bytes), got \"%.80s\"", k->name, MAX_PATTERN, v[0]);
    for (size_t i = 1; i < n; i++) {
        int rc = group_option(p, v[i], &r);
        if (rc != 0)
            return rc;
    }
    if (c->num_group_rules == CONFIG_MAX_GROUP_RULES)
        return fail(p, "%s: too many group lines (at most %d)", k->name,
                    CONFIG_MAX_GROUP_RULES);
    r.pattern = strdup(v[0]);
    if (r.pattern == NULL)
        return fail_nomem(p);
    c->group_rules[c->num_group_rules++] = r;
    return 0;
}

/* ---- the table --------------------------------------------------------------------- */

#define F(x) offsetof(struct config, x)
#define NUM(n, t, fn, lo, hi, d, fl) {#n, t, F(n), 0, lo, hi, fl, fn, d, NULL}
#define COUNT(n, t, lo, hi, d, fl) NUM(n, t, parse_count, lo, hi, d, fl)
#define SECONDS(n, lo, hi, d, fl) NUM(n, KT_INT, parse_seconds, lo, hi, d, fl)
#define SIZE(n, lo, hi, d, fl) NUM(n, KT_U64, parse_size, lo, hi, d, fl)
#define SWITCH(n, d, fl) NUM(n, KT_BOOL, parse_bool, 0, 1, d, fl)
#define TEXT(n, fn, lo, hi, d, fl) NUM(n, KT_STR, fn, lo, hi, d, fl)
#define CHOICE(n, d, ch, fl) {#n, KT_STR, F(n), 0, 1, 16, fl, parse_choice, d, ch}
#define LIST(n, cnt, t, fn, hi, d, fl) {#n, t, F(n), F(cnt), 0, hi, fl, fn, d, NULL}
#define PENDING KEY_PENDING
#define RESTART KEY_RESTART

/* In wsd.conf(5) order. To build a pending feature, drop PENDING from its keys. */
static const struct key keys[] = {
    /* listeners and processes */
    {"listen", KT_LISTEN, F(listen), F(num_listen), 0, 0, 0, parse_listen, "127.0.0.1:8080",
     NULL},
    {"tls_listen", KT_TLS_LISTEN, F(listen), F(num_listen), 0, 0, 0, parse_listen, NULL,
     NULL},
    TEXT(tls_cert, parse_str, 1, PATH_MAX, NULL, 0),
    TEXT(tls_key, parse_str, 1, PATH_MAX, NULL, 0),
    SECONDS(tls_ticket_rotation, 1, DAY, "3600", RESTART),
    {"workers", KT_WORKERS, F(workers), F(workers_auto), 1, CONFIG_MAX_WORKERS, 0,
     parse_workers, "auto", NULL},
    COUNT(max_connections, KT_U32, 1, 1000000, "100000", RESTART),
    COUNT(max_groups, KT_U32, 16, 4194304, "65536", RESTART),
    COUNT(backlog, KT_INT, 1, 65535, "4096", 0),
    /* limits and timers */
    SIZE(max_message_size, 125, GIB, "16m", 0),
    SIZE(max_data_size, 1, GIB, "64k", 0),
    SIZE(output_queue_limit, KIB, 16 * GIB, "4m", 0),
    COUNT(max_header_size, KT_U32, 512, 65536, "8192", 0),
    COUNT(max_headers, KT_U32, 8, 64, "64", 0),
    SECONDS(header_timeout, 1, HOUR, "10", 0),
    SECONDS(close_timeout, 1, HOUR, "5", 0),
    SECONDS(heartbeat, 1, DAY, "30", 0),
    COUNT(heartbeat_misses, KT_INT, 1, 100, "3", 0),
    SECONDS(shutdown_timeout, 0, DAY, "10", 0),
    /* compression */
    SWITCH(compression, "on", 0),
    COUNT(compression_level, KT_INT, 0, 9, "1", 0),
    SIZE(compression_min_size, 0, GIB, "64", 0),
    COUNT(compression_window_bits, KT_INT, 9, 15, "15", 0),
    COUNT(compression_mem_level, KT_INT, 1, 9, "8", 0),
    SWITCH(compression_server_no_context_takeover, "off", 0),
    SWITCH(compression_client_no_context_takeover, "off", 0),
    /* routes */
    TEXT(ws_path, parse_route, 1, 255, "/ws", 0),
    TEXT(echo_path, parse_route, 0, 255, "", 0),
    TEXT(health_path, parse_route, 1, 255, "/healthz", 0),
    TEXT(metrics_path, parse_route, 1, 255, "/metrics", 0),
    TEXT(client_path, parse_route, 1, 255, "/wsd.js", 0),
    TEXT(client_file, parse_str, 1, PATH_MAX, "client/wsd.js", 0),
    /* access */
    LIST(allowed_origins, num_allowed_origins, KT_LIST, parse_words, 255, NULL, 0),
    LIST(metrics_allow, num_metrics_allow, KT_CIDRS, parse_cidrs, 0, "127.0.0.1/32 ::1/128", 0),
    LIST(ip_allow, num_ip_allow, KT_CIDRS, parse_cidrs, 0, NULL, 0),
    COUNT(max_connections_per_ip, KT_U32, 0, 1000000, "0", 0),
    /* authentication */
    SWITCH(anonymous, "off", 0),
    LIST(public_groups, num_public_groups, KT_LIST, parse_patterns, 0, NULL, 0),
    {"jwt_hs256_secret", KT_SECRET, F(jwt_hs256_secret), F(jwt_hs256_secret_len), 1, 4096,
     0, parse_secret, NULL, NULL},
    {"jwt_ed25519_public_key", KT_KEY32, F(jwt_ed25519_public_key),
     F(has_jwt_ed25519_public_key), 0, 0, 0, parse_key32, NULL, NULL},
    SECONDS(jwt_leeway, 0, HOUR, "5", 0),
    SWITCH(jwt_require_exp, "off", 0),
    SECONDS(auth_timeout, 1, HOUR, "10", 0),
    SECONDS(auth_grace, 0, DAY, "30", 0),
    /* messaging and durability */
    TEXT(store, parse_store, 1, PATH_MAX, "lmdb:/var/lib/wsd", RESTART),
    CHOICE(store_sync, "batch", "batch|always|none", RESTART),
    SECONDS(offline_ttl, 0, YEAR, "604800", 0),
    COUNT(offline_max, KT_U32, 1, 100000000, "10000", 0),
    SECONDS(session_ttl, 0, 30 * DAY, "300", 0),
    SECONDS(dedup_window, 0, 30 * DAY, "120", 0),
    COUNT(dedup_max, KT_U32, 1, 1000000, "1024", 0),
    COUNT(history_size, KT_I64, 0, 1000000, "100", 0),
    NUM(history_ttl, KT_I64, parse_seconds, 0, YEAR, "300", 0),
    {"group", KT_GROUPS, F(group_rules), F(num_group_rules), 0, 0, 0, parse_group, NULL,
     NULL},
    COUNT(rate_limit, KT_U32, 0, 1000000, "0", 0),
    COUNT(rate_burst, KT_U32, 0, 100000000, "0", 0),
    /* files and logging */
    TEXT(control_socket, parse_str, 1, 107, "/tmp/wsd.sock", RESTART),
    TEXT(pid_file, parse_str, 1, PATH_MAX, NULL, RESTART),
    TEXT(log_file, parse_str, 1, PATH_MAX, NULL, 0),
    CHOICE(log_level, "info", "debug|info|notice|warn|error|crit", 0),
    TEXT(audit_log, parse_str, 1, PATH_MAX, NULL, 0),
};

_Static_assert(WSD_ARRAY_LEN(keys) <= MAX_KEYS, "raise MAX_KEYS");

static const struct key *key_find(const char *name)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

static size_t key_index(const char *name)
{
    const struct key *k = key_find(name);

    WSD_BUG_ON(k == NULL);
    return (size_t)(k - keys);
}

/* ---- per-type operations ----------------------------------------------------------- */

static void key_fini(struct config *c, const struct key *k)
{
    size_t *count = field(c, k->aux);

    switch (k->type) {
    case KT_STR:
        str_free(k, *(char **)field(c, k->off));
        break;
    case KT_LIST:
        for (size_t i = 0; i < *count; i++)
            free(((char **)field(c, k->off))[i]);
        break;
    case KT_SECRET:
        secret_free(*(uint8_t **)field(c, k->off), *count);
        break;
    case KT_GROUPS:
        for (size_t i = 0; i < *count; i++)
            free(c->group_rules[i].pattern);
        break;
    default:
        break;
    }
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool listen_same(const struct config *a, const struct config *b, bool tls)
{
    size_t i = 0, j = 0;

    for (;;) {
        while (i < a->num_listen && a->listen[i].tls != tls)
            i++;
        while (j < b->num_listen && b->listen[j].tls != tls)
            j++;
        if (i == a->num_listen || j == b->num_listen)
            return i == a->num_listen && j == b->num_listen;
        if (!listen_same_addr(&a->listen[i++], &b->listen[j++]))
            return false;
    }
}

static bool cidrs_same(const struct config_cidr *a, const struct config_cidr *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].family != b[i].family || a[i].prefix != b[i].prefix ||
            memcmp(a[i].addr, b[i].addr, sizeof(a[i].addr)) != 0)
            return false;
    }
    return true;
}

static bool groups_same(const struct config *a, const struct config *b)
{
    if (a->num_group_rules != b->num_group_rules)
        return false;
    for (size_t i = 0; i < a->num_group_rules; i++) {
        const struct config_group_rule *x = &a->group_rules[i], *y = &b->group_rules[i];
        if (!str_eq(x->pattern, y->pattern) || x->history_size != y->history_size ||
            x->history_ttl != y->history_ttl)
            return false;
    }
    return true;
}

/* Lists stored as an array plus a count at aux. */
static bool array_same(const struct config *a, const struct config *b, const struct key *k)
{
    size_t n = *(const size_t *)cfield(a, k->aux);

    if (n != *(const size_t *)cfield(b, k->aux))
        return false;
    if (k->type == KT_CIDRS)
        return cidrs_same(cfield(a, k->off), cfield(b, k->off), n);
    if (k->type == KT_SECRET)
        return n == 0 || memcmp(*(uint8_t *const *)cfield(a, k->off),
                                *(uint8_t *const *)cfield(b, k->off), n) == 0;
    for (size_t i = 0; i < n; i++) {
        if (!str_eq(((char *const *)cfield(a, k->off))[i], ((char *const *)cfield(b, k->off))[i]))
            return false;
    }
    return true;
}

/* True when a and b hold the same value for k. */
static bool key_same(const struct config *a, const struct config *b, const struct key *k)
{
    int64_t x = 0, y = 0;

    switch (k->type) {
    case KT_BOOL:
        return *(const bool *)cfield(a, k->off) == *(const bool *)cfield(b, k->off);
    case KT_STR:
        return str_eq(*(char *const *)cfield(a, k->off), *(char *const *)cfield(b, k->off));
    case KT_LIST:
    case KT_CIDRS:
    case KT_SECRET:
        return array_same(a, b, k);
    case KT_LISTEN:
    case KT_TLS_LISTEN:
        return listen_same(a, b, k->type == KT_TLS_LISTEN);
    case KT_WORKERS:
        return a->workers_auto == b->workers_auto && a->workers == b->workers;
    case KT_KEY32:
        return a->has_jwt_ed25519_public_key == b->has_jwt_ed25519_public_key &&
               memcmp(a->jwt_ed25519_public_key, b->jwt_ed25519_public_key, 32) == 0;
    case KT_GROUPS:
        return groups_same(a, b);
    default:
        number_load(a, k, &x);
        number_load(b, k, &y);
        return x == y;
    }
}

/* ---- tokens and lines -------------------------------------------------------------- */

/* A double-quoted value at *sp, unescaped in place; *sp is left after the closing quote. */
static int token_quoted(struct parse *p, char **sp, char **tok)
{
    char *s = *sp + 1, *out = s;

    *tok = out;
    for (;;) {
        if (*s == '\0')
            return fail(p, "unterminated quoted value");
        if (*s == '"')
            break;
        if (*s == '\\' && (s[1] == '"' || s[1] == '\\')) {
            s++;
        } else if (*s == '\\') {
            return s[1] == '\0' ? fail(p, "unterminated quoted value")
                                : fail(p, "unknown escape \"\\%c\" in a quoted value "
                                          "(only \\\" and \\\\)", s[1]);
        }
        *out++ = *s++;
    }
    s++;
    if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '#')
        return fail(p, "expected a space after the closing quote");
    *out = '\0';
    *sp = s;
    return 0;
}

/* Splits line into words; '#' outside quotes ends it. Modifies line. */
static int tokenize(struct parse *p, char *s, char **v, size_t *n)
{
    *n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            *s++ = '\0';
        if (*s == '\0' || *s == '#')
            return 0;
        if (*n == MAX_TOKENS)
            return fail(p, "%s: too many values (at most %d)", v[0], MAX_TOKENS - 1);
        if (*s == '"') {
            int rc = token_quoted(p, &s, &v[*n]);
            if (rc != 0)
                return rc;
        } else {
            v[*n] = s;
            for (; *s != '\0' && *s != ' ' && *s != '\t' && *s != '#'; s++) {
                if (*s == '"')
                    return fail(p, "unexpected '\"' inside a value (quote the whole value)");
            }
            if (*s == '#')
                *s = '\0';
        }
        (*n)++;
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = WSD_MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = WSD_MIN(best, diag + (a[i - 1] != b[j - 1]));
            diag = up;
        }
    }
    return row[lb];
}

static int unknown_key(struct parse *p, const char *name)
{
    const char *near = NULL;
    size_t best = 3;

    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        size_t d = edit_distance(name, keys[i].name);
        if (d < best) {
            best = d;
            near = keys[i].name;
        }
    }
    if (near != NULL)
        return fail(p, "unknown key \"%.64s\" (did you mean \"%s\"?)", name, near);
    return fail(p, "unknown key \"%.64s\"", name);
}

static int parse_line(struct parse *p, char *line)
{
    char *v[MAX_TOKENS];
    size_t n = 0, len = strlen(line);

    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(p, "control character 0x%02x in the line", ch);
    }
    int rc = tokenize(p, line, v, &n);
    if (rc != 0 || n == 0)
        return rc;
    const struct key *k = key_find(v[0]);
    if (k == NULL)
        return unknown_key(p, v[0]);
    rc = k->parse(p, k, v + 1, n - 1);
    if (rc == 0)
        p->seen[k - keys] = true;
    return rc;
}

/* rate_burst left out (or 0) follows rate_limit: twice it. */
static void parse_finish(struct parse *p)
{
    struct config *c = p->c;
    bool limit = p->seen[key_index("rate_limit")], burst = p->seen[key_index("rate_burst")];

    if ((limit && !burst) || (burst && c->rate_burst == 0))
        c->rate_burst = 2 * c->rate_limit;
}

/* ---- the API ----------------------------------------------------------------------- */

void config_init(struct config *c)
{
    char err[CONFIG_ERR_LEN];
    struct parse p = {.c = c, .name = "(defaults)", .err = err};

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        const struct key *k = &keys[i];
        char text[64], *v[MAX_TOKENS];
        size_t n = 0;

        if (k->def == NULL)
            continue;
        if (k->type == KT_STR) {
            *(char **)field(c, k->off) = (char *)k->def;
            continue;
        }
        snprintf(text, sizeof(text), "%s", k->def);
        int rc = tokenize(&p, text, v, &n);
        if (rc == 0)
            rc = k->parse(&p, k, v, n);
        WSD_BUG_ON(rc != 0);
    }
}

void config_fini(struct config *c)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++)
        key_fini(c, &keys[i]);
    free(c->path);
    config_init(c);
}

int config_parse(struct config *c, const char *name, const char *text,
                 char err[CONFIG_ERR_LEN])
{
    struct parse p = {.c = c, .name = name, .err = err};
    char *buf = strdup(text);
    char *line = buf;
    int rc = 0;

    err[0] = '\0';
    if (buf == NULL)
        return fail_nomem(&p);
    while (rc == 0 && line != NULL) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        p.line++;
        rc = parse_line(&p, line);
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (rc == 0)
        parse_finish(&p);
    free(buf);
    return rc;
}

/* Reads the whole file into a NUL-terminated *out. */
static int read_file(const char *path, char **out, char err[CONFIG_ERR_LEN])
{
    size_t len = 0, cap = 4096;
    char *text = malloc(cap + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = WSD_EIO;

    if (fd == -1) {
        snprintf(err, CONFIG_ERR_LEN, "%s: cannot open: %s", path, strerror(errno));
        goto out_free_text;
    }
    while (text != NULL) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            snprintf(err, CONFIG_ERR_LEN, "%s: cannot read: %s", path, strerror(errno));
            goto out_close_fd;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap && cap >= CONFIG_MAX_FILE) {
            snprintf(err, CONFIG_ERR_LEN, "%s: larger than %d bytes", path, CONFIG_MAX_FILE);
            rc = WSD_EINVAL;
            goto out_close_fd;
        }
        if (len == cap) {
            char *bigger = realloc(text, cap * 2 + 1);
            if (bigger == NULL)
                free(text);
            text = bigger;
            cap *= 2;
        }
    }
    rc = text != NULL ? 0 : WSD_ENOMEM;
    if (rc == WSD_ENOMEM)
        snprintf(err, CONFIG_ERR_LEN, "%s: out of memory", path);
    else
        text[len] = '\0';
    if (rc == 0 && strlen(text) != len) {
        snprintf(err, CONFIG_ERR_LEN, "%s: contains a NUL byte", path);
        rc = WSD_EINVAL;
    }
out_close_fd:
    close(fd);
out_free_text:
    if (rc == 0)
        *out = text;
    else
        free(text);
    return rc;
}

int config_load(struct config *c, const char *path, char err[CONFIG_ERR_LEN])
{
    char *text = NULL;
    int rc = read_file(path, &text, err);

    if (rc != 0)
        return rc;
    char *copy = strdup(path);
    if (copy == NULL) {
        free(text);
        snprintf(err, CONFIG_ERR_LEN, "%s: out of memory", path);
        return WSD_ENOMEM;
    }
    free(c->path);
    c->path = copy;
    rc = config_parse(c, path, text, err);
    free(text);
    return rc;
}

static int invalid(const struct config *c, char *err, const char *fmt, ...) WSD_PRINTF(3, 4);

/* Writes "PATH: message" (or just the message for defaults). Returns WSD_EINVAL. */
static int invalid(const struct config *c, char *err, const char *fmt, ...)
{
    int n = c->path != NULL ? snprintf(err, CONFIG_ERR_LEN, "%s: ", c->path) : 0;
    va_list ap;

    if (n < 0 || n >= CONFIG_ERR_LEN)
        return WSD_EINVAL;
    va_start(ap, fmt);
    vsnprintf(err + n, CONFIG_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    return WSD_EINVAL;
}

/* Every number within its key's range, workers and listeners counted. */
static int validate_ranges(const struct config *c, char *err)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        const struct key *k = &keys[i];
        int64_t v = 0;
        if (number_load(c, k, &v) && (v < k->min || v > k->max))
            return invalid(c, err, "%s: %lld is outside %lld..%lld", k->name, (long long)v,
                           (long long)k->min, (long long)k->max);
    }
    if (c->workers < 1 || c->workers > CONFIG_MAX_WORKERS)
        return invalid(c, err, "workers: %d is outside 1..%d", c->workers, CONFIG_MAX_WORKERS);
    if (c->num_listen < 1 || c->num_listen > CONFIG_MAX_LISTEN)
        return invalid(c, err, "listen: expected 1 to %d listeners, got %zu",
                       CONFIG_MAX_LISTEN, c->num_listen);
    return 0;
}

/* Routes start with '/' (echo_path may be empty) and no two are the same. */
static int validate_routes(const struct config *c, char *err)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        if (keys[i].parse != parse_route)
            continue;
        const char *a = *(char *const *)cfield(c, keys[i].off);
        if (!route_ok(a, keys[i].min == 0))
            return invalid(c, err, "%s: expected a path starting with '/', got \"%.80s\"",
                           keys[i].name, a != NULL ? a : "");
        for (size_t j = 0; j < i && a != NULL && a[0] != '\0'; j++) {
            if (keys[j].parse != parse_route)
                continue;
            if (str_eq(a, *(char *const *)cfield(c, keys[j].off)))
                return invalid(c, err, "%s and %s are both \"%s\"", keys[j].name,
                               keys[i].name, a);
        }
    }
    return 0;
}

static bool is_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

int config_validate(const struct config *c, char err[CONFIG_ERR_LEN])
{
    bool tls = false;
    int rc = validate_ranges(c, err);

    if (rc == 0)
        rc = validate_routes(c, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < c->num_listen; i++)
        tls = tls || c->listen[i].tls;
    if (tls && (is_empty(c->tls_cert) || is_empty(c->tls_key)))
        return invalid(c, err, "tls_listen requires tls_cert and tls_key");
    if (is_empty(c->tls_cert) != is_empty(c->tls_key))
        return invalid(c, err, "tls_cert and tls_key go together: set both or neither");
    if (c->max_data_size > c->max_message_size)
        return invalid(c, err, "max_data_size (%llu) exceeds max_message_size (%llu)",
                       (unsigned long long)c->max_data_size,
                       (unsigned long long)c->max_message_size);
    return 0;
}

/* Names of the keys with any of flags on whose values differ between a and b. */
static size_t keys_differing(const struct config *a, const struct config *b, unsigned flags,
                             char *out, size_t cap)
{
    size_t count = 0, used = 0;
    bool full = cap == 0;

    if (cap > 0)
        out[0] = '\0';
    for (size_t i = 0; i < WSD_ARRAY_LEN(keys); i++) {
        const struct key *k = &keys[i];
        if ((flags != 0 && (k->flags & flags) == 0) || key_same(a, b, k))
            continue;
        size_t need = strlen(k->name) + (used > 0);
        full = full || used + need >= cap;
        if (!full) {
            snprintf(out + used, cap - used, "%s%s", used > 0 ? " " : "", k->name);
            used += need;
        }
        count++;
    }
    return count;
}

size_t config_pending_keys(const struct config *c, char *out, size_t cap)
{
    struct config d;

    config_init(&d);
    d.rate_burst = 2 * c->rate_limit; /* its default follows rate_limit */
    return keys_differing(c, &d, KEY_PENDING, out, cap);
}

size_t config_changed_keys(const struct config *a, const struct config *b, char *out,
                           size_t cap)
{
    return keys_differing(a, b, 0, out, cap);
}

size_t config_restart_keys(const struct config *a, const struct config *b, char *out,
                           size_t cap)
{
    return keys_differing(a, b, KEY_RESTART, out, cap);
}

const char *config_key_name(size_t i)
{
    return i < WSD_ARRAY_LEN(keys) ? keys[i].name : NULL;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool config_cidr_match(const struct config_cidr *list, size_t n, const struct sockaddr *addr)
{
    uint8_t a[16];
    int family;

    if (addr == NULL)
        return false;
    if (addr->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, 4);
        family = AF_INET;
    } else if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
        family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
        memcpy(a, family == AF_INET ? a6->s6_addr + 12 : a6->s6_addr, family == AF_INET ? 4 : 16);
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].family == family && prefix_match(a, list[i].addr, list[i].prefix))
            return true;
    }
    return false;
}

const char config_default_text[] =
    "# wsd.conf - the built-in defaults of wsd; see wsd.conf(5).\n"
    "#\n"
    "# wsd runs without a configuration file. Each \"#key value\" line below shows a key\n"
    "# commented out with its default; remove the \"#\" and change the value to override\n"
    "# it. Unset by default: tls_listen, tls_cert, tls_key, allowed_origins (any origin),\n"
    "# ip_allow (any address), public_groups, jwt_hs256_secret, jwt_ed25519_public_key,\n"
    "# group, pid_file, log_file (stderr), audit_log.\n"
    "\n"
    "# listeners and processes\n"
    "#listen 127.0.0.1:8080\n"
    "#tls_ticket_rotation 3600\n"
    "#workers auto\n"
    "#max_connections 100000\n"
    "#max_groups 65536\n"
    "#backlog 4096\n"
    "\n"
    "# limits and timers\n"
    "#max_message_size 16m\n"
    "#max_data_size 64k\n"
    "#output_queue_limit 4m\n"
    "#max_header_size 8192\n"
    "#max_headers 64\n"
    "#header_timeout 10\n"
    "#close_timeout 5\n"
    "#heartbeat 30\n"
    "#heartbeat_misses 3\n"
    "#shutdown_timeout 10\n"
    "\n"
    "# compression (permessage-deflate)\n"
    "#compression on\n"
    "#compression_level 1\n"
    "#compression_min_size 64\n"
    "#compression_window_bits 15\n"
    "#compression_mem_level 8\n"
    "#compression_server_no_context_takeover off\n"
    "#compression_client_no_context_takeover off\n"
    "\n"
    "# routes\n"
    "#ws_path /ws\n"
    "#echo_path \"\"\n"
    "#health_path /healthz\n"
    "#metrics_path /metrics\n"
    "#client_path /wsd.js\n"
    "#client_file client/wsd.js\n"
    "\n"
    "# access\n"
    "#metrics_allow 127.0.0.1/32 ::1/128\n"
    "#max_connections_per_ip 0\n"
    "\n"
    "# authentication\n"
    "#anonymous off\n"
    "#jwt_leeway 5\n"
    "#jwt_require_exp off\n"
    "#auth_timeout 10\n"
    "#auth_grace 30\n"
    "\n"
    "# messaging and durability\n"
    "#store lmdb:/var/lib/wsd\n"
    "#store_sync batch\n"
    "#offline_ttl 7d\n"
    "#offline_max 10000\n"
    "#session_ttl 300\n"
    "#dedup_window 120\n"
    "#dedup_max 1024\n"
    "#history_size 100\n"
    "#history_ttl 300\n"
    "#rate_limit 0\n"
    "#rate_burst 0\n"
    "\n"
    "# files and logging\n"
    "#control_socket /tmp/wsd.sock\n"
    "#log_level info\n";
