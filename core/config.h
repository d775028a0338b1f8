/*
 * config.h - the wsd configuration: one file of `key value` lines, `#` comments.
 *
 * Every key has a default (config_init) documented in wsd.conf(5). Parsing reports the
 * first error as "FILE:LINE: reason". Unknown keys are errors. Keys whose feature is not
 * built yet are accepted, validated and listed by config_pending_keys() so the master
 * can report them once at start-up.
 *
 * Field names are the key names. Durations are whole seconds (int), sizes bytes
 * (uint64_t), switches bool, text strings owned by the config (NULL when unset). A text
 * field holding its default points at static text: never free or replace a field
 * directly; change a config only through config_parse()/config_load() and release it
 * with config_fini().
 */
#ifndef WSD_CORE_CONFIG_H
#define WSD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_LIST 64     /* allowed_origins, metrics_allow, public_groups entries */
#define CONFIG_MAX_GROUP_RULES 64
#define CONFIG_MAX_WORKERS 64
#define CONFIG_ERR_LEN 512

struct config_listen {
    char text[64];                /* as written, e.g. "127.0.0.1:8080" or "[::1]:8080" */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool tls;
};

struct config_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address, host bits cleared */
    int prefix;
};

struct config_group_rule {
    char *pattern;     /* group-name pattern: "*", "room:*" or an exact name */
    int64_t history_size; /* -1 = inherit the global history_size */
    int64_t history_ttl;  /* -1 = inherit the global history_ttl */
};

struct config {
    char *path;                   /* file this was read from, NULL for the defaults */

    /* listeners and processes */
    struct config_listen listen[CONFIG_MAX_LISTEN];
    size_t num_listen;            /* `listen` and `tls_listen` lines; default 127.0.0.1:8080 */
    char *tls_cert;
    char *tls_key;
    int tls_ticket_rotation;      /* seconds each session-ticket key is used, default 3600 */
    int workers;                  /* resolved: `auto` becomes the number of CPUs */
    bool workers_auto;
    uint32_t max_connections;     /* default 100000 */
    uint32_t max_groups;          /* groups with members at once, default 65536 */
    int backlog;                  /* listen(2) backlog, default 4096 */

    /* limits and timers */
    uint64_t max_message_size;    /* default 16 MiB */
    uint64_t max_data_size;       /* default 65536 */
    uint64_t output_queue_limit;  /* default 4 MiB */
    uint32_t max_header_size;     /* HTTP request head, default 8192 */
    uint32_t max_headers;         /* HTTP header fields, default 64 */
    int header_timeout;           /* seconds to send the request head, default 10 */
    int close_timeout;            /* seconds for the close handshake, default 5 */
    int heartbeat;                /* default 30 */
    int heartbeat_misses;         /* default 3 */
    int shutdown_timeout;         /* default 10 */

    /* compression (permessage-deflate) */
    bool compression;             /* default on */
    int compression_level;        /* 0..9, default 1 */
    uint64_t compression_min_size; /* default 64 */
    int compression_window_bits;  /* 9..15, default 15 */
    int compression_mem_level;    /* 1..9, default 8 */
    bool compression_server_no_context_takeover; /* default off */
    bool compression_client_no_context_takeover; /* default off */

    /* routes */
    char *ws_path;                /* default "/ws" */
    char *echo_path;              /* default "" (off) */
    char *health_path;            /* default "/healthz" */
    char *metrics_path;           /* default "/metrics" */
    char *client_path;            /* default "/wsd.js" */
    char *client_file;            /* file served there; default "client/wsd.js" */

    /* access */
    char *allowed_origins[CONFIG_MAX_LIST];
    size_t num_allowed_origins;   /* none = any origin */
    struct config_cidr metrics_allow[CONFIG_MAX_LIST];
    size_t num_metrics_allow;     /* default 127.0.0.1/32 ::1/128 */
    struct config_cidr ip_allow[CONFIG_MAX_LIST];
    size_t num_ip_allow;          /* none = every address */
    uint32_t max_connections_per_ip; /* 0 = unlimited (default) */

    /* authentication */
    bool anonymous;               /* default off */
    char *public_groups[CONFIG_MAX_LIST];
    size_t num_public_groups;
    uint8_t *jwt_hs256_secret;    /* decoded bytes (raw, or base64:...) */
    size_t jwt_hs256_secret_len;
    uint8_t jwt_ed25519_public_key[32];
    bool has_jwt_ed25519_public_key;
    int jwt_leeway;               /* default 5 */
    bool jwt_require_exp;         /* default off */
    int auth_timeout;             /* default 10 */
    int auth_grace;               /* default 30 */

    /* messaging and durability */
    char *store;                  /* "lmdb:DIR" (default "lmdb:/var/lib/wsd") or
                                     "redis://HOST:PORT[/DB]" */
    char *store_sync;             /* "batch" (default), "always", "none" */
    int offline_ttl;              /* default 604800 (7 days) */
    uint32_t offline_max;         /* messages per user, default 10000 */
    int session_ttl;              /* default 300 */
    int dedup_window;             /* default 120 */
    uint32_t dedup_max;           /* remembered mids per user, default 1024 */
    int64_t history_size;         /* default 100 */
    int64_t history_ttl;          /* default 300 */
    struct config_group_rule group_rules[CONFIG_MAX_GROUP_RULES];
    size_t num_group_rules;
    uint32_t rate_limit;          /* messages per second per connection, 0 = off */
    uint32_t rate_burst;          /* default 2 * rate_limit (a file that sets rate_limit
                                     but not rate_burst, or rate_burst 0, gets that) */

    /* files and logging */
    char *control_socket;         /* default "/tmp/wsd.sock" */
    char *pid_file;               /* default none */
    char *log_file;               /* default none: stderr */
    char *log_level;              /* default "info" */
    char *audit_log;              /* default none */
};

/* Fills c with every default. */
void config_init(struct config *c);

/* Frees what c owns and leaves it as config_init() made it. */
void config_fini(struct config *c);

/*
 * Reads path into c (which config_init() prepared). On error returns WSD_EINVAL or
 * WSD_EIO (WSD_ENOMEM when out of memory) and writes "PATH:LINE: reason" (or
 * "PATH: reason") into err; c then holds a partial parse and must only be passed to
 * config_fini(). Single-valued keys: the last line wins. Within one text, the first
 * listen/tls_listen line replaces the listeners c held, later ones add; each list line
 * (allowed_origins, metrics_allow, ip_allow, public_groups) replaces that list; group
 * lines are appended in order.
 */
int config_load(struct config *c, const char *path, char err[CONFIG_ERR_LEN]);

/*
 * Parses config text as if read from a file called name (tests, embedded defaults).
 * Same return values as config_load().
 */
int config_parse(struct config *c, const char *name, const char *text,
                 char err[CONFIG_ERR_LEN]);

/*
 * Cross-key checks after parsing (tls_listen needs tls_cert and tls_key, heartbeat > 0,
 * ...). Returns 0 or WSD_EINVAL with the reason in err.
 */
int config_validate(const struct config *c, char err[CONFIG_ERR_LEN]);

/*
 * Names of keys set in c (to a value other than the default) whose feature this build
 * does not implement yet, for one start-up notice; writes a space-separated list into
 * out (truncated at a whole name to fit cap; out may be NULL when cap is 0). Returns how
 * many, including any that did not fit.
 */
size_t config_pending_keys(const struct config *c, char *out, size_t cap);

/*
 * Names of the keys whose values differ between a and b (for a reload's log line);
 * space-separated into out (truncated at a whole name to fit cap). Returns how many.
 */
size_t config_changed_keys(const struct config *a, const struct config *b, char *out,
                           size_t cap);

/*
 * Like config_changed_keys(), limited to keys a HUP cannot apply (max_connections,
 * store, store_sync, pid_file): the running server keeps the old value until restarted.
 */
size_t config_restart_keys(const struct config *a, const struct config *b, char *out,
                           size_t cap);

/* Name of the i-th known key, in wsd.conf(5) order; NULL when i is past the last. */
const char *config_key_name(size_t i);

/*
 * True when addr (AF_INET/AF_INET6 sockaddr) lies in one of the n ranges. An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is matched as the IPv4 address; NULL or another family
 * matches nothing.
 */
bool config_cidr_match(const struct config_cidr *list, size_t n, const struct sockaddr *addr);

/*
 * The default configuration embedded in the binary: every key commented out with its
 * default ("#key value"), as in etc/wsd.conf. Parsing it changes nothing; the defaults
 * themselves come from config_init().
 */
extern const char config_default_text[];

#endif
