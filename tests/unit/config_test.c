/*
 * config_test.c - the configuration: defaults, every key type with its suffixes and
 * range errors (exact "FILE:LINE: reason" text), quoting and comments, listeners, CIDR
 * matching, group lines, cross-key validation, pending keys, and the shipped files
 * (etc/wsd.conf, man/wsd.conf.5, the embedded defaults) kept in step with the key table.
 * Run from the repository root.
 */
#include "core/config.h"

#include "core/log.h"
#include "core/wsd.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static struct config cfg;
static char err[CONFIG_ERR_LEN];

static void setup(void)
{
    config_init(&cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    config_fini(&cfg);
}

TestSuite(config, .init = setup, .fini = teardown);

static int parse(const char *text)
{
    return config_parse(&cfg, "t.conf", text, err);
}

static void parse_ok(const char *text)
{
    int rc = parse(text);
    cr_assert_eq(rc, 0, "parse of <%s> failed: %s", text, err);
}

/* Parses text, expects WSD_EINVAL with exactly the message want. */
static void parse_fails(const char *text, const char *want)
{
    int rc = parse(text);
    cr_assert_eq(rc, WSD_EINVAL, "parse of <%s> returned %d", text, rc);
    cr_assert_str_eq(err, want, "parse of <%s>", text);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (tests run from the repository root)", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static char *write_temp(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/config_test.XXXXXX");
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static struct sockaddr_storage sa(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
    } else {
        cr_assert_eq(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1, "%s", ip);
        a6->sin6_family = AF_INET6;
    }
    return ss;
}

static bool cidr_has(const struct config_cidr *list, size_t n, const char *ip)
{
    struct sockaddr_storage ss = sa(ip);
    return config_cidr_match(list, n, (const struct sockaddr *)&ss);
}

static size_t key_count(void)
{
    size_t n = 0;
    while (config_key_name(n) != NULL)
        n++;
    return n;
}

/* ---- defaults ---------------------------------------------------------------------- */

Test(config, defaults_match_the_documented_values)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert_eq(cfg.num_listen, 1);
    cr_assert_str_eq(cfg.listen[0].text, "127.0.0.1:8080");
    cr_assert_not(cfg.listen[0].tls);
    cr_assert(cfg.workers_auto);
    cr_assert_eq(cfg.workers, cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
    cr_assert_eq(cfg.max_connections, 100000);
    cr_assert_eq(cfg.max_groups, 65536);
    cr_assert_eq(cfg.backlog, 4096);
    cr_assert_eq(cfg.max_message_size, 16u << 20);
    cr_assert_eq(cfg.max_data_size, 65536);
    cr_assert_eq(cfg.output_queue_limit, 4u << 20);
    cr_assert_eq(cfg.max_header_size, 8192);
    cr_assert_eq(cfg.max_headers, 64);
    cr_assert_eq(cfg.header_timeout, 10);
    cr_assert_eq(cfg.close_timeout, 5);
    cr_assert_eq(cfg.heartbeat, 30);
    cr_assert_eq(cfg.heartbeat_misses, 3);
    cr_assert_eq(cfg.shutdown_timeout, 10);
    cr_assert(cfg.compression);
    cr_assert_eq(cfg.compression_level, 1);
    cr_assert_eq(cfg.compression_min_size, 64);
    cr_assert_eq(cfg.compression_window_bits, 15);
    cr_assert_eq(cfg.compression_mem_level, 8);
    cr_assert_not(cfg.compression_server_no_context_takeover);
    cr_assert_not(cfg.compression_client_no_context_takeover);
    cr_assert_str_eq(cfg.ws_path, "/ws");
    cr_assert_str_eq(cfg.echo_path, "");
    cr_assert_str_eq(cfg.health_path, "/healthz");
    cr_assert_str_eq(cfg.metrics_path, "/metrics");
    cr_assert_str_eq(cfg.client_path, "/wsd.js");
    cr_assert_str_eq(cfg.client_file, "client/wsd.js");
    cr_assert_null(cfg.path);
}

Test(config, defaults_of_access_auth_store_and_files)
{
    cr_assert_eq(cfg.num_allowed_origins, 0);
    cr_assert_eq(cfg.num_metrics_allow, 2);
    cr_assert(cidr_has(cfg.metrics_allow, cfg.num_metrics_allow, "127.0.0.1"));
    cr_assert(cidr_has(cfg.metrics_allow, cfg.num_metrics_allow, "::1"));
    cr_assert_not(cidr_has(cfg.metrics_allow, cfg.num_metrics_allow, "127.0.0.2"));
    cr_assert_eq(cfg.num_ip_allow, 0);
    cr_assert_eq(cfg.max_connections_per_ip, 0);
    cr_assert_not(cfg.anonymous);
    cr_assert_eq(cfg.num_public_groups, 0);
    cr_assert_null(cfg.jwt_hs256_secret);
    cr_assert_eq(cfg.jwt_hs256_secret_len, 0);
    cr_assert_not(cfg.has_jwt_ed25519_public_key);
    cr_assert_eq(cfg.jwt_leeway, 5);
    cr_assert_not(cfg.jwt_require_exp);
    cr_assert_eq(cfg.auth_timeout, 10);
    cr_assert_eq(cfg.auth_grace, 30);
    cr_assert_str_eq(cfg.store, "lmdb:/var/lib/wsd");
    cr_assert_str_eq(cfg.store_sync, "batch");
    cr_assert_eq(cfg.offline_ttl, 604800);
    cr_assert_eq(cfg.offline_max, 10000);
    cr_assert_eq(cfg.session_ttl, 300);
    cr_assert_eq(cfg.dedup_window, 120);
    cr_assert_eq(cfg.dedup_max, 1024);
    cr_assert_eq(cfg.history_size, 100);
    cr_assert_eq(cfg.history_ttl, 300);
    cr_assert_eq(cfg.num_group_rules, 0);
    cr_assert_eq(cfg.rate_limit, 0);
    cr_assert_eq(cfg.rate_burst, 0);
    cr_assert_str_eq(cfg.control_socket, "/tmp/wsd.sock");
    cr_assert_null(cfg.pid_file);
    cr_assert_null(cfg.log_file);
    cr_assert_str_eq(cfg.log_level, "info");
    cr_assert_null(cfg.audit_log);
}

Test(config, defaults_validate_and_have_no_pending_keys)
{
    char out[256] = "x";
    cr_assert_eq(config_validate(&cfg, err), 0, "%s", err);
    cr_assert_eq(config_pending_keys(&cfg, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "");
}

Test(config, fini_frees_and_restores_the_defaults)
{
    struct config fresh;
    char out[512];
    parse_ok("heartbeat 5\nws_path /x\nallowed_origins https://a.example\n"
             "jwt_hs256_secret s3cret\ngroup room:* history_size=5\nlisten [::1]:9000\n");
    config_fini(&cfg);
    config_init(&fresh);
    cr_assert_eq(config_changed_keys(&cfg, &fresh, out, sizeof(out)), 0, "%s", out);
    config_fini(&fresh);
}

Test(config, embedded_default_text_parses_to_the_defaults)
{
    struct config fresh;
    char out[512];
    config_init(&fresh);
    parse_ok(config_default_text);
    cr_assert_eq(config_changed_keys(&cfg, &fresh, out, sizeof(out)), 0, "%s", out);

    /* Uncommenting every "#key value" line still yields the defaults. */
    char *text = strdup(config_default_text);
    size_t uncommented = 0;
    for (char *line = text; line != NULL && *line != '\0';) {
        if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
            line[0] = ' ';
            uncommented++;
        }
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    cr_assert_gt(uncommented, 40);
    parse_ok(text);
    cr_assert_eq(config_changed_keys(&cfg, &fresh, out, sizeof(out)), 0, "%s", out);
    free(text);
    config_fini(&fresh);
}

Test(config, embedded_default_text_names_every_key)
{
    for (size_t i = 0; config_key_name(i) != NULL; i++)
        cr_assert_not_null(strstr(config_default_text, config_key_name(i)), "%s missing",
                           config_key_name(i));
}

/* ---- every key --------------------------------------------------------------------- */

/* One valid, non-default value per key; the table must list every key. */
static const char *const every_key[][2] = {
    {"listen", "0.0.0.0:80"},
    {"tls_listen", "[::]:443"},
    {"tls_cert", "/etc/wsd/cert.pem"},
    {"tls_key", "/etc/wsd/key.pem"},
    {"tls_ticket_rotation", "600"},
    {"workers", "2"},
    {"max_connections", "5000"},
    {"max_groups", "1024"},
    {"backlog", "128"},
    {"max_message_size", "1m"},
    {"max_data_size", "4k"},
    {"output_queue_limit", "8m"},
    {"max_header_size", "4096"},
    {"max_headers", "32"},
    {"header_timeout", "20"},
    {"close_timeout", "2"},
    {"heartbeat", "15"},
    {"heartbeat_misses", "5"},
    {"shutdown_timeout", "30"},
    {"compression", "off"},
    {"compression_level", "6"},
    {"compression_min_size", "256"},
    {"compression_window_bits", "12"},
    {"compression_mem_level", "9"},
    {"compression_server_no_context_takeover", "on"},
    {"compression_client_no_context_takeover", "on"},
    {"ws_path", "/socket"},
    {"echo_path", "/echo"},
    {"health_path", "/health"},
    {"metrics_path", "/stats"},
    {"client_path", "/client.js"},
    {"client_file", "/usr/share/wsd/wsd.js"},
    {"allowed_origins", "https://example.com"},
    {"metrics_allow", "10.0.0.0/8"},
    {"ip_allow", "192.168.0.0/16"},
    {"max_connections_per_ip", "100"},
    {"anonymous", "on"},
    {"public_groups", "public:*"},
    {"jwt_hs256_secret", "secret"},
    {"jwt_ed25519_public_key", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
    {"jwt_leeway", "10"},
    {"jwt_require_exp", "on"},
    {"auth_timeout", "5"},
    {"auth_grace", "60"},
    {"store", "redis://127.0.0.1:6379"},
    {"store_sync", "always"},
    {"offline_ttl", "1d"},
    {"offline_max", "50"},
    {"session_ttl", "600"},
    {"dedup_window", "60"},
    {"dedup_max", "64"},
    {"history_size", "10"},
    {"history_ttl", "60"},
    {"group", "room:* history_size=5"},
    {"rate_limit", "10"},
    {"rate_burst", "50"},
    {"control_socket", "/run/wsd.sock"},
    {"pid_file", "/run/wsd.pid"},
    {"log_file", "/var/log/wsd.log"},
    {"log_level", "debug"},
    {"audit_log", "/var/log/wsd-audit.log"},
};

Test(config, every_key_parses_and_changes_only_itself)
{
    cr_assert_eq(key_count(), WSD_ARRAY_LEN(every_key), "key table and test table differ");
    for (size_t i = 0; i < WSD_ARRAY_LEN(every_key); i++) {
        struct config c, fresh;
        char line[256], out[256];
        cr_assert_str_eq(config_key_name(i), every_key[i][0]);
        config_init(&c);
        config_init(&fresh);
        snprintf(line, sizeof(line), "%s %s\n", every_key[i][0], every_key[i][1]);
        cr_assert_eq(config_parse(&c, "t.conf", line, err), 0, "%s", err);
        size_t n = config_changed_keys(&c, &fresh, out, sizeof(out));
        /* rate_limit also moves rate_burst (twice it); the first tls_listen line
         * replaces the default listener */
        if (strcmp(every_key[i][0], "rate_limit") == 0)
            cr_assert_str_eq(out, "rate_limit rate_burst");
        else if (strcmp(every_key[i][0], "tls_listen") == 0)
            cr_assert_str_eq(out, "listen tls_listen");
        else
            cr_assert(n == 1 && strcmp(out, every_key[i][0]) == 0, "%s changed: %s", line,
                      out);
        config_fini(&c);
        config_fini(&fresh);
    }
}

Test(config, key_names_are_listed_in_order_and_end_with_null)
{
    cr_assert_str_eq(config_key_name(0), "listen");
    cr_assert_null(config_key_name(key_count()));
    cr_assert_null(config_key_name((size_t)-1));
}

/* ---- numbers ----------------------------------------------------------------------- */

Test(config, sizes_take_k_m_g_suffixes_in_either_case)
{
    parse_ok("max_message_size 16m");
    cr_assert_eq(cfg.max_message_size, 16u << 20);
    parse_ok("max_message_size 2K");
    cr_assert_eq(cfg.max_message_size, 2048);
    parse_ok("max_message_size 3M");
    cr_assert_eq(cfg.max_message_size, 3u << 20);
    parse_ok("max_message_size 1g");
    cr_assert_eq(cfg.max_message_size, 1u << 30);
    parse_ok("output_queue_limit 2G");
    cr_assert_eq(cfg.output_queue_limit, 2ull << 30);
    parse_ok("max_data_size 125");
    cr_assert_eq(cfg.max_data_size, 125);
    parse_ok("compression_min_size 0");
    cr_assert_eq(cfg.compression_min_size, 0);
}

Test(config, sizes_out_of_range_or_malformed_are_reported)
{
    parse_fails("max_message_size 2g", "t.conf:1: max_message_size: expected at most 1g, "
                                       "got \"2g\"");
    parse_fails("max_message_size 124",
                "t.conf:1: max_message_size: expected at least 125 bytes, got \"124\"");
    parse_fails("max_message_size 16mb",
                "t.conf:1: max_message_size: expected a size in bytes, got \"16mb\"");
    parse_fails("max_message_size -1",
                "t.conf:1: max_message_size: expected a size in bytes, got \"-1\"");
    parse_fails("max_message_size 16t",
                "t.conf:1: max_message_size: expected a size in bytes, got \"16t\"");
    parse_fails("max_message_size 99999999999999999999999",
                "t.conf:1: max_message_size: expected at most 1g, "
                "got \"99999999999999999999999\"");
    parse_fails("max_message_size 17179869184g",
                "t.conf:1: max_message_size: expected at most 1g, got \"17179869184g\"");
    parse_fails("output_queue_limit 1000",
                "t.conf:1: output_queue_limit: expected at least 1k, got \"1000\"");
    parse_fails("max_data_size 0", "t.conf:1: max_data_size: expected a size in bytes, "
                                   "got \"0\"");
}

Test(config, durations_take_s_m_h_d_suffixes)
{
    parse_ok("heartbeat 30");
    cr_assert_eq(cfg.heartbeat, 30);
    parse_ok("heartbeat 45s");
    cr_assert_eq(cfg.heartbeat, 45);
    parse_ok("heartbeat 2m");
    cr_assert_eq(cfg.heartbeat, 120);
    parse_ok("heartbeat 1h");
    cr_assert_eq(cfg.heartbeat, 3600);
    parse_ok("heartbeat 1d");
    cr_assert_eq(cfg.heartbeat, 86400);
    parse_ok("offline_ttl 7d");
    cr_assert_eq(cfg.offline_ttl, 604800);
    parse_ok("history_ttl 0");
    cr_assert_eq(cfg.history_ttl, 0);
    parse_ok("history_ttl 1h");
    cr_assert_eq(cfg.history_ttl, 3600);
}

Test(config, durations_out_of_range_or_malformed_are_reported)
{
    parse_fails("\n\n\n\n\n\n\n\n\n\n\nheartbeat abc",
                "t.conf:12: heartbeat: expected a positive number of seconds, got \"abc\"");
    parse_fails("heartbeat 0", "t.conf:1: heartbeat: expected a positive number of seconds, "
                               "got \"0\"");
    parse_fails("heartbeat 2d",
                "t.conf:1: heartbeat: expected at most 86400 seconds, got \"2d\"");
    parse_fails("heartbeat 1H",
                "t.conf:1: heartbeat: expected a positive number of seconds, got \"1H\"");
    parse_fails("heartbeat 1.5",
                "t.conf:1: heartbeat: expected a positive number of seconds, got \"1.5\"");
    parse_fails("shutdown_timeout x",
                "t.conf:1: shutdown_timeout: expected a number of seconds, got \"x\"");
    parse_fails("offline_ttl 366d",
                "t.conf:1: offline_ttl: expected at most 31536000 seconds, got \"366d\"");
}

Test(config, counts_are_range_checked)
{
    parse_ok("compression_level 0\ncompression_window_bits 9\ncompression_mem_level 9\n"
             "max_connections 1000000\nmax_header_size 512\nmax_headers 8\n"
             "heartbeat_misses 1\n");
    cr_assert_eq(cfg.compression_level, 0);
    cr_assert_eq(cfg.compression_window_bits, 9);
    cr_assert_eq(cfg.max_connections, 1000000);
    cr_assert_eq(cfg.max_header_size, 512);
    cr_assert_eq(cfg.max_headers, 8);
    cr_assert_eq(cfg.heartbeat_misses, 1);
    parse_fails("compression_level 10",
                "t.conf:1: compression_level: expected at most 9, got \"10\"");
    parse_fails("compression_window_bits 8",
                "t.conf:1: compression_window_bits: expected at least 9, got \"8\"");
    parse_fails("compression_window_bits 16",
                "t.conf:1: compression_window_bits: expected at most 15, got \"16\"");
    parse_fails("compression_mem_level 0",
                "t.conf:1: compression_mem_level: expected a positive integer, got \"0\"");
    parse_fails("max_connections 1000001",
                "t.conf:1: max_connections: expected at most 1000000, got \"1000001\"");
    parse_fails("max_header_size 511",
                "t.conf:1: max_header_size: expected at least 512, got \"511\"");
    parse_fails("max_header_size 65537",
                "t.conf:1: max_header_size: expected at most 65536, got \"65537\"");
    parse_fails("max_headers 7", "t.conf:1: max_headers: expected at least 8, got \"7\"");
    parse_fails("max_headers 65", "t.conf:1: max_headers: expected at most 64, got \"65\"");
    parse_fails("heartbeat_misses 0",
                "t.conf:1: heartbeat_misses: expected a positive integer, got \"0\"");
    parse_fails("max_connections_per_ip many",
                "t.conf:1: max_connections_per_ip: expected a non-negative integer, "
                "got \"many\"");
    parse_fails("max_headers 10k", "t.conf:1: max_headers: expected a positive integer, "
                                   "got \"10k\"");
}

Test(config, workers_take_a_count_or_auto)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    parse_ok("workers 3");
    cr_assert_eq(cfg.workers, 3);
    cr_assert_not(cfg.workers_auto);
    parse_ok("workers 64");
    cr_assert_eq(cfg.workers, 64);
    parse_ok("workers auto");
    cr_assert(cfg.workers_auto);
    cr_assert_eq(cfg.workers, cpus > 64 ? 64 : cpus);
    parse_fails("workers 0", "t.conf:1: workers: expected auto or a number from 1 to 64, "
                             "got \"0\"");
    parse_fails("workers 65", "t.conf:1: workers: expected auto or a number from 1 to 64, "
                              "got \"65\"");
    parse_fails("workers many", "t.conf:1: workers: expected auto or a number from 1 to 64, "
                                "got \"many\"");
}

Test(config, rate_burst_follows_rate_limit_unless_given)
{
    parse_ok("rate_limit 10");
    cr_assert_eq(cfg.rate_burst, 20);
    parse_ok("rate_limit 10\nrate_burst 15");
    cr_assert_eq(cfg.rate_burst, 15);
    parse_ok("rate_burst 15\nrate_limit 30");
    cr_assert_eq(cfg.rate_burst, 15);
    parse_ok("rate_limit 7\nrate_burst 0");
    cr_assert_eq(cfg.rate_burst, 14);
    parse_ok("heartbeat 5");
    cr_assert_eq(cfg.rate_burst, 14, "a text without either leaves it alone");
}

/* ---- switches, choices, text ------------------------------------------------------- */

Test(config, switches_accept_on_off_yes_no_true_false_1_0)
{
    static const char *const on[] = {"on", "yes", "true", "1", "ON", "Yes", "TRUE"};
    static const char *const off[] = {"off", "no", "false", "0", "OFF", "No", "False"};
    char line[64];
    for (size_t i = 0; i < WSD_ARRAY_LEN(on); i++) {
        snprintf(line, sizeof(line), "anonymous %s", on[i]);
        parse_ok(line);
        cr_assert(cfg.anonymous, "%s", line);
        snprintf(line, sizeof(line), "anonymous %s", off[i]);
        parse_ok(line);
        cr_assert_not(cfg.anonymous, "%s", line);
    }
    parse_fails("compression maybe", "t.conf:1: compression: expected on or off, "
                                     "got \"maybe\"");
    parse_fails("compression 2", "t.conf:1: compression: expected on or off, got \"2\"");
}

Test(config, log_level_and_store_sync_take_their_words)
{
    static const char *const levels[] = {"debug", "info", "notice", "warn", "error", "crit"};
    char line[64];
    for (size_t i = 0; i < WSD_ARRAY_LEN(levels); i++) {
        enum log_level lv;
        snprintf(line, sizeof(line), "log_level %s", levels[i]);
        parse_ok(line);
        cr_assert_str_eq(cfg.log_level, levels[i]);
        cr_assert_eq(log_level_parse(cfg.log_level, &lv), 0, "log.c must know %s", levels[i]);
        cr_assert_eq((int)lv, (int)i);
    }
    parse_fails("log_level verbose", "t.conf:1: log_level: expected "
                                     "debug|info|notice|warn|error|crit, got \"verbose\"");
    parse_fails("log_level inf", "t.conf:1: log_level: expected "
                                 "debug|info|notice|warn|error|crit, got \"inf\"");
    parse_ok("store_sync always\nstore_sync none");
    cr_assert_str_eq(cfg.store_sync, "none");
    parse_ok("store_sync batch");
    cr_assert_str_eq(cfg.store_sync, "batch");
    parse_fails("store_sync \"\"", "t.conf:1: store_sync: expected batch|always|none, "
                                   "got \"\"");
}

Test(config, text_keys_store_copies_and_check_length)
{
    char line[256];
    parse_ok("pid_file /run/wsd.pid\nlog_file \"/var/log/my wsd.log\"\naudit_log /a.log");
    cr_assert_str_eq(cfg.pid_file, "/run/wsd.pid");
    cr_assert_str_eq(cfg.log_file, "/var/log/my wsd.log");
    cr_assert_str_eq(cfg.audit_log, "/a.log");
    parse_ok("pid_file \"\"");
    cr_assert_null(cfg.pid_file, "an empty value unsets a key that is unset by default");
    snprintf(line, sizeof(line), "control_socket /%0106d", 0);
    parse_ok(line);
    cr_assert_eq(strlen(cfg.control_socket), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    snprintf(line, sizeof(line), "control_socket /%0107d", 0);
    parse_fails(line, "t.conf:1: control_socket: expected at most 107 bytes, got 108");
    parse_fails("control_socket \"\"", "t.conf:1: control_socket: expected a non-empty value");
    parse_fails("client_file", "t.conf:1: client_file: expected a value");
}

Test(config, routes_must_start_with_a_slash)
{
    parse_ok("ws_path /socket\necho_path /echo\nhealth_path /h\nmetrics_path /m\n"
             "client_path /c.js");
    cr_assert_str_eq(cfg.ws_path, "/socket");
    cr_assert_str_eq(cfg.echo_path, "/echo");
    cr_assert_str_eq(cfg.client_path, "/c.js");
    parse_ok("echo_path \"\"");
    cr_assert_str_eq(cfg.echo_path, "");
    parse_fails("ws_path ws", "t.conf:1: ws_path: expected a path starting with '/', "
                              "got \"ws\"");
    parse_fails("ws_path \"\"", "t.conf:1: ws_path: expected a non-empty value");
    parse_fails("echo_path echo", "t.conf:1: echo_path: expected a path starting with '/' "
                                  "(or \"\" for off), got \"echo\"");
    parse_fails("metrics_path /m?x=1", "t.conf:1: metrics_path: expected a path starting "
                                       "with '/', got \"/m?x=1\"");
}

Test(config, store_syntax_is_checked)
{
    static const char *const good[] = {
        "lmdb:/var/lib/wsd", "lmdb:build/data", "redis://127.0.0.1:6379",
        "redis://cache.internal:6380/2", "redis://[::1]:6379", "redis://[::1]:6379/0",
        "redis://my_redis-1:1",
    };
    static const char *const bad[] = {
        "lmdb:", "lmdb", "redis://host", "redis://:6379", "redis://host:0",
        "redis://host:65536", "redis://host:6379/x", "redis://host:6379/", "mysql://h:1",
        "redis://user@host:6379", "redis://[::1:6379", "redis://[]:6379", "/var/lib/wsd",
    };
    char line[128], want[256];
    for (size_t i = 0; i < WSD_ARRAY_LEN(good); i++) {
        snprintf(line, sizeof(line), "store %s", good[i]);
        parse_ok(line);
        cr_assert_str_eq(cfg.store, good[i]);
    }
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        snprintf(line, sizeof(line), "store %s", bad[i]);
        snprintf(want, sizeof(want), "t.conf:1: store: expected lmdb:DIR or "
                 "redis://HOST:PORT[/DB], got \"%s\"", bad[i]);
        parse_fails(line, want);
    }
}

/* ---- secrets and keys -------------------------------------------------------------- */

Test(config, hs256_secret_is_raw_or_base64)
{
    parse_ok("jwt_hs256_secret \"two words\"");
    cr_assert_eq(cfg.jwt_hs256_secret_len, 9);
    cr_assert(memcmp(cfg.jwt_hs256_secret, "two words", 9) == 0);
    parse_ok("jwt_hs256_secret base64:AAEC/w==");
    cr_assert_eq(cfg.jwt_hs256_secret_len, 4);
    cr_assert(memcmp(cfg.jwt_hs256_secret, "\x00\x01\x02\xff", 4) == 0);
    parse_ok("jwt_hs256_secret base64:AAEC_w");
    cr_assert_eq(cfg.jwt_hs256_secret_len, 4);
    cr_assert(memcmp(cfg.jwt_hs256_secret, "\x00\x01\x02\xff", 4) == 0);
    parse_ok("jwt_hs256_secret base64:-_8");
    cr_assert_eq(cfg.jwt_hs256_secret_len, 2);
    cr_assert(memcmp(cfg.jwt_hs256_secret, "\xfb\xff", 2) == 0);
}

Test(config, hs256_secret_errors_never_show_the_secret)
{
    parse_fails("jwt_hs256_secret base64:not*base64",
                "t.conf:1: jwt_hs256_secret: invalid base64 after \"base64:\"");
    parse_fails("jwt_hs256_secret base64:QQ=", /* padding must complete a quantum */
                "t.conf:1: jwt_hs256_secret: invalid base64 after \"base64:\"");
    parse_fails("jwt_hs256_secret base64:QR==", /* non-zero unused bits */
                "t.conf:1: jwt_hs256_secret: invalid base64 after \"base64:\"");
    parse_fails("jwt_hs256_secret base64:",
                "t.conf:1: jwt_hs256_secret: expected a secret of 1 to 4096 bytes, got 0");
    parse_fails("jwt_hs256_secret \"\"",
                "t.conf:1: jwt_hs256_secret: expected a secret of 1 to 4096 bytes, got 0");
    parse_fails("jwt_hs256_secret two words",
                "t.conf:1: jwt_hs256_secret: expected one value, got 2 (quote a value that "
                "contains spaces)");
}

Test(config, ed25519_public_key_is_base64_of_32_bytes)
{
    static const uint8_t want[32] = {
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
        0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
        0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
    };
    parse_ok("jwt_ed25519_public_key 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    cr_assert(cfg.has_jwt_ed25519_public_key);
    cr_assert(memcmp(cfg.jwt_ed25519_public_key, want, 32) == 0);
    memset(cfg.jwt_ed25519_public_key, 0, 32);
    parse_ok("jwt_ed25519_public_key 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    cr_assert(memcmp(cfg.jwt_ed25519_public_key, want, 32) == 0);
    parse_fails("jwt_ed25519_public_key 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==",
                "t.conf:1: jwt_ed25519_public_key: expected the base64 of a 32-byte public "
                "key, got 31 bytes");
    parse_fails("jwt_ed25519_public_key not-base64!",
                "t.conf:1: jwt_ed25519_public_key: expected the base64 of a 32-byte public "
                "key, got \"not-base64!\"");
}

/* ---- lists ------------------------------------------------------------------------- */

Test(config, cidr_lists_parse_bare_addresses_and_prefixes)
{
    parse_ok("metrics_allow 10.1.2.3/8 192.168.1.7 ::1 2001:db8::5/32 0.0.0.0/0");
    cr_assert_eq(cfg.num_metrics_allow, 5);
    cr_assert_eq(cfg.metrics_allow[0].family, AF_INET);
    cr_assert_eq(cfg.metrics_allow[0].prefix, 8);
    cr_assert(memcmp(cfg.metrics_allow[0].addr, "\x0a\x00\x00\x00", 4) == 0,
              "host bits are cleared");
    cr_assert_eq(cfg.metrics_allow[1].prefix, 32);
    cr_assert_eq(cfg.metrics_allow[2].family, AF_INET6);
    cr_assert_eq(cfg.metrics_allow[2].prefix, 128);
    cr_assert_eq(cfg.metrics_allow[3].prefix, 32);
    cr_assert(memcmp(cfg.metrics_allow[3].addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\0",
                     16) == 0);
    cr_assert_eq(cfg.metrics_allow[4].prefix, 0);
    parse_ok("ip_allow ::ffff:10.0.0.0/104");
    cr_assert_eq(cfg.ip_allow[0].family, AF_INET, "a v4-mapped range is an IPv4 range");
    cr_assert_eq(cfg.ip_allow[0].prefix, 8);
}

Test(config, cidr_list_lines_replace_the_list)
{
    parse_ok("ip_allow 10.0.0.0/8 10.1.0.0/16\nip_allow 192.168.0.0/16");
    cr_assert_eq(cfg.num_ip_allow, 1);
    cr_assert_eq(cfg.ip_allow[0].addr[0], 192);
    parse_ok("metrics_allow");
    cr_assert_eq(cfg.num_metrics_allow, 0, "no values: nobody");
}

Test(config, bad_cidrs_are_reported)
{
    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1",
                                      "localhost", "10.0.0/8", "/8", "1.2.3.4/8/8",
                                      "10.0.0.0/08x"};
    char line[64], want[256];
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        snprintf(line, sizeof(line), "metrics_allow ::1 %s", bad[i]);
        snprintf(want, sizeof(want), "t.conf:1: metrics_allow: expected addresses or CIDR "
                 "ranges such as 10.0.0.0/8 or ::1/128, got \"%s\"", bad[i]);
        parse_fails(line, want);
    }
    cr_assert_eq(cfg.num_metrics_allow, 2, "a failed line leaves the list alone");
}

Test(config, lists_hold_at_most_64_entries)
{
    char line[2048] = "allowed_origins";
    for (int i = 0; i < 64; i++)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), " https://h%d.example", i);
    parse_ok(line);
    cr_assert_eq(cfg.num_allowed_origins, 64);
    cr_assert_str_eq(cfg.allowed_origins[63], "https://h63.example");
    strcat(line, " https://one-more.example");
    parse_fails(line, "t.conf:1: allowed_origins: too many values (at most 64)");
}

Test(config, word_lists_replace_per_line)
{
    parse_ok("allowed_origins https://a.example https://b.example\n"
             "public_groups public:* lobby\n");
    cr_assert_eq(cfg.num_allowed_origins, 2);
    cr_assert_str_eq(cfg.allowed_origins[1], "https://b.example");
    cr_assert_eq(cfg.num_public_groups, 2);
    cr_assert_str_eq(cfg.public_groups[0], "public:*");
    cr_assert_str_eq(cfg.public_groups[1], "lobby");
    parse_ok("allowed_origins https://c.example\npublic_groups *");
    cr_assert_eq(cfg.num_allowed_origins, 1);
    cr_assert_str_eq(cfg.allowed_origins[0], "https://c.example");
    cr_assert_eq(cfg.num_public_groups, 1);
    cr_assert_str_eq(cfg.public_groups[0], "*");
    parse_fails("public_groups a*b", "t.conf:1: public_groups: expected group-name patterns "
                "(a name, or a prefix ending in '*', at most 128 bytes), got \"a*b\"");
    parse_fails("allowed_origins \"\"", "t.conf:1: allowed_origins: expected non-empty values "
                "of at most 255 bytes, got \"\"");
}

/* ---- groups ------------------------------------------------------------------------ */

Test(config, group_lines_are_kept_in_order)
{
    parse_ok("group chat:* history_size=500 history_ttl=1h\n"
             "group ephemeral:* history_size=0\n"
             "group audit history_ttl=7d\n"
             "group *\n");
    cr_assert_eq(cfg.num_group_rules, 4);
    cr_assert_str_eq(cfg.group_rules[0].pattern, "chat:*");
    cr_assert_eq(cfg.group_rules[0].history_size, 500);
    cr_assert_eq(cfg.group_rules[0].history_ttl, 3600);
    cr_assert_str_eq(cfg.group_rules[1].pattern, "ephemeral:*");
    cr_assert_eq(cfg.group_rules[1].history_size, 0);
    cr_assert_eq(cfg.group_rules[1].history_ttl, -1, "left out: inherit");
    cr_assert_eq(cfg.group_rules[2].history_size, -1);
    cr_assert_eq(cfg.group_rules[2].history_ttl, 604800);
    cr_assert_str_eq(cfg.group_rules[3].pattern, "*");
}

Test(config, group_line_errors_are_reported)
{
    parse_fails("group room:* history_size=5 colour=red",
                "t.conf:1: group: unknown option \"colour\" (expected history_size=N or "
                "history_ttl=SECONDS)");
    parse_fails("group room:* history_size",
                "t.conf:1: group: unknown option \"history_size\" (expected history_size=N or "
                "history_ttl=SECONDS)");
    parse_fails("group room:* history_size=x",
                "t.conf:1: group: history_size: expected a non-negative integer, got \"x\"");
    parse_fails("group room:* history_ttl=2y",
                "t.conf:1: group: history_ttl: expected a number of seconds, got \"2y\"");
    parse_fails("group room:* history_size=1 history_size=2",
                "t.conf:1: group: history_size given twice");
    parse_fails("group", "t.conf:1: group: expected a group-name pattern and history_size=N "
                         "or history_ttl=SECONDS");
    parse_fails("group *room history_size=1",
                "t.conf:1: group: expected a group-name pattern (a name, or a prefix ending "
                "in '*', at most 128 bytes), got \"*room\"");
}

Test(config, group_lines_are_limited)
{
    char *text = malloc(64 * 32 + 64);
    text[0] = '\0';
    for (int i = 0; i < CONFIG_MAX_GROUP_RULES; i++)
        sprintf(text + strlen(text), "group g%d:* history_size=%d\n", i, i);
    parse_ok(text);
    cr_assert_eq(cfg.num_group_rules, CONFIG_MAX_GROUP_RULES);
    cr_assert_eq(cfg.group_rules[63].history_size, 63);
    parse_fails("group one-more", "t.conf:1: group: too many group lines (at most 64)");
    free(text);
}

/* ---- listeners --------------------------------------------------------------------- */

Test(config, listen_forms_resolve_without_dns)
{
    parse_ok("listen 10.0.0.1:80\nlisten [::1]:8443\nlisten *:9000\nlisten [::]:1");
    cr_assert_eq(cfg.num_listen, 4);
    const struct sockaddr_in *a = (const struct sockaddr_in *)&cfg.listen[0].addr;
    cr_assert_eq(a->sin_family, AF_INET);
    cr_assert_eq(ntohs(a->sin_port), 80);
    cr_assert_eq(ntohl(a->sin_addr.s_addr), 0x0a000001);
    cr_assert_eq(cfg.listen[0].addr_len, sizeof(struct sockaddr_in));
    const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&cfg.listen[1].addr;
    cr_assert_eq(b->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(b->sin6_port), 8443);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&b->sin6_addr));
    cr_assert_eq(cfg.listen[1].addr_len, sizeof(struct sockaddr_in6));
    cr_assert_str_eq(cfg.listen[1].text, "[::1]:8443");
    const struct sockaddr_in *c = (const struct sockaddr_in *)&cfg.listen[2].addr;
    cr_assert_eq(c->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_eq(ntohs(c->sin_port), 9000);
    cr_assert_str_eq(cfg.listen[2].text, "*:9000");
    const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&cfg.listen[3].addr;
    cr_assert(IN6_IS_ADDR_UNSPECIFIED(&d->sin6_addr));
    cr_assert_eq(ntohs(d->sin6_port), 1);
    for (size_t i = 0; i < cfg.num_listen; i++)
        cr_assert_not(cfg.listen[i].tls);
}

Test(config, first_listen_line_replaces_the_default_later_ones_add)
{
    parse_ok("listen 127.0.0.1:9001");
    cr_assert_eq(cfg.num_listen, 1);
    cr_assert_str_eq(cfg.listen[0].text, "127.0.0.1:9001");
    parse_ok("tls_listen 0.0.0.0:443\nlisten 0.0.0.0:80\n");
    cr_assert_eq(cfg.num_listen, 2, "a new text starts a new list");
    cr_assert(cfg.listen[0].tls);
    cr_assert_str_eq(cfg.listen[0].text, "0.0.0.0:443");
    cr_assert_not(cfg.listen[1].tls);
}

Test(config, listen_errors_are_reported)
{
    static const char *const bad[] = {
        "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http", "localhost:80",
        "::1:80", "[::1]80", "[::1]:", ":80", "[]:80", "1.2.3.4.5:80", "*:-1",
        "[fe80::1%eth0]:80", "[0000:0000:0000:0000:0000:0000:0000:0001]:8080000",
    };
    char line[128], want[256];
    for (size_t i = 0; i < WSD_ARRAY_LEN(bad); i++) {
        snprintf(line, sizeof(line), "listen %s", bad[i]);
        snprintf(want, sizeof(want), "t.conf:1: listen: expected IP:PORT, [IPv6]:PORT or "
                 "*:PORT with a port from 1 to 65535, got \"%s\"", bad[i]);
        parse_fails(line, want);
    }
    parse_fails("listen 127.0.0.1:80\ntls_listen 127.0.0.1:80",
                "t.conf:2: tls_listen: 127.0.0.1:80 is already a listener");
    parse_fails("listen 127.0.0.1:80 127.0.0.1:81",
                "t.conf:1: listen: expected one value, got 2 (quote a value that contains "
                "spaces)");
}

Test(config, at_most_16_listeners)
{
    char text[1024] = "";
    for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
        sprintf(text + strlen(text), "listen 127.0.0.1:%d\n", 9000 + i);
    parse_ok(text);
    cr_assert_eq(cfg.num_listen, 16);
    strcat(text, "listen 127.0.0.1:9999\n");
    parse_fails(text, "t.conf:17: listen: too many listeners (at most 16)");
}

/* ---- syntax ------------------------------------------------------------------------ */

Test(config, comments_blank_lines_and_whitespace_are_ignored)
{
    parse_ok("# a comment\n\n   \n\theartbeat\t 7  # trailing comment\n"
             "  # indented comment\nheartbeat_misses 4#no space needed\n");
    cr_assert_eq(cfg.heartbeat, 7);
    cr_assert_eq(cfg.heartbeat_misses, 4);
}

Test(config, quoted_values_keep_spaces_hashes_and_escapes)
{
    parse_ok("log_file \"/var/log/a # b.log\" # comment\n"
             "jwt_hs256_secret \"q\\\"uote\\\\back\"\n"
             "pid_file \"/run/x.pid\"#comment\n");
    cr_assert_str_eq(cfg.log_file, "/var/log/a # b.log");
    cr_assert_eq(cfg.jwt_hs256_secret_len, strlen("q\"uote\\back"));
    cr_assert(memcmp(cfg.jwt_hs256_secret, "q\"uote\\back", cfg.jwt_hs256_secret_len) == 0);
    cr_assert_str_eq(cfg.pid_file, "/run/x.pid");
}

Test(config, quoting_errors_are_reported)
{
    parse_fails("log_file \"open", "t.conf:1: unterminated quoted value");
    parse_fails("log_file \"open\\", "t.conf:1: unterminated quoted value");
    parse_fails("log_file \"a\\nb\"", "t.conf:1: unknown escape \"\\n\" in a quoted value "
                                      "(only \\\" and \\\\)");
    parse_fails("log_file a\"b\"", "t.conf:1: unexpected '\"' inside a value (quote the whole "
                                   "value)");
    parse_fails("log_file \"a\"b", "t.conf:1: expected a space after the closing quote");
    parse_fails("log_file a\x01", "t.conf:1: control character 0x01 in the line");
}

Test(config, crlf_line_endings_are_accepted)
{
    parse_ok("heartbeat 9\r\nws_path /w\r\n");
    cr_assert_eq(cfg.heartbeat, 9);
    cr_assert_str_eq(cfg.ws_path, "/w");
    parse_fails("heartbeat 9\r\r\n", "t.conf:1: control character 0x0d in the line");
}

Test(config, unknown_keys_are_errors_with_a_suggestion)
{
    parse_fails("# comment\n\nhartbeat 5\n",
                "t.conf:3: unknown key \"hartbeat\" (did you mean \"heartbeat\"?)");
    parse_fails("frobnicate 5", "t.conf:1: unknown key \"frobnicate\"");
    parse_fails("Heartbeat 5", "t.conf:1: unknown key \"Heartbeat\" (did you mean "
                               "\"heartbeat\"?)");
}

Test(config, repeated_single_valued_keys_last_one_wins)
{
    parse_ok("heartbeat 5\nws_path /a\nheartbeat 6\nws_path /b\nws_path /ws\n");
    cr_assert_eq(cfg.heartbeat, 6);
    cr_assert_str_eq(cfg.ws_path, "/ws");
}

Test(config, value_count_is_checked)
{
    parse_fails("heartbeat", "t.conf:1: heartbeat: expected a value");
    parse_fails("heartbeat # nothing", "t.conf:1: heartbeat: expected a value");
    parse_fails("heartbeat 1 2", "t.conf:1: heartbeat: expected one value, got 2 (quote a "
                                 "value that contains spaces)");
}

Test(config, an_error_reports_the_line_it_is_on)
{
    parse_fails("heartbeat 5\n# x\n\nworkers 2\nmax_headers 100\nheartbeat 1\n",
                "t.conf:5: max_headers: expected at most 64, got \"100\"");
}

/* ---- files ------------------------------------------------------------------------- */

Test(config, load_reads_a_file_and_remembers_its_path)
{
    static const char text[] = "heartbeat 12\n";
    char *path = write_temp(text, sizeof(text) - 1);
    cr_assert_eq(config_load(&cfg, path, err), 0, "%s", err);
    cr_assert_eq(cfg.heartbeat, 12);
    cr_assert_str_eq(cfg.path, path);
    unlink(path);
}

Test(config, load_reports_the_file_name_and_line)
{
    static const char text[] = "heartbeat 12\n\nheartbeat abc\n";
    char *path = write_temp(text, sizeof(text) - 1);
    char want[256];
    cr_assert_eq(config_load(&cfg, path, err), WSD_EINVAL);
    snprintf(want, sizeof(want),
             "%s:3: heartbeat: expected a positive number of seconds, got \"abc\"", path);
    cr_assert_str_eq(err, want);
    unlink(path);
}

Test(config, load_of_a_missing_file_is_an_io_error)
{
    cr_assert_eq(config_load(&cfg, "/nonexistent/wsd.conf", err), WSD_EIO);
    cr_assert_str_eq(err, "/nonexistent/wsd.conf: cannot open: No such file or directory");
    cr_assert_eq(config_load(&cfg, "/", err), WSD_EIO);
    cr_assert_str_eq(err, "/: cannot read: Is a directory");
}

Test(config, load_refuses_a_nul_byte)
{
    static const char text[] = "heartbeat 12\n\0x\n";
    char *path = write_temp(text, sizeof(text) - 1);
    char want[256];
    cr_assert_eq(config_load(&cfg, path, err), WSD_EINVAL);
    snprintf(want, sizeof(want), "%s: contains a NUL byte", path);
    cr_assert_str_eq(err, want);
    unlink(path);
}

Test(config, load_reads_files_larger_than_one_read)
{
    size_t len = 0, cap = 200000;
    char *text = malloc(cap);
    while (len < cap - 100)
        len += (size_t)sprintf(text + len, "# filler comment line number %zu\n", len);
    len += (size_t)sprintf(text + len, "heartbeat 77\n");
    char *path = write_temp(text, len);
    cr_assert_eq(config_load(&cfg, path, err), 0, "%s", err);
    cr_assert_eq(cfg.heartbeat, 77);
    unlink(path);
    free(text);
}

Test(config, sample_config_parses_and_validates)
{
    char out[512];
    cr_assert_eq(config_load(&cfg, "etc/wsd.conf", err), 0, "%s", err);
    cr_assert_eq(config_validate(&cfg, err), 0, "%s", err);
    cr_assert_eq(cfg.num_listen, 1);
    cr_assert_str_eq(cfg.listen[0].text, "127.0.0.1:8080");
    cr_assert(cfg.workers_auto);
    cr_assert_str_eq(cfg.echo_path, "/echo");
    cr_assert_str_eq(cfg.control_socket, "/tmp/wsd.sock");
    cr_assert_str_eq(cfg.store, "lmdb:build/data");
    cr_assert(cfg.anonymous);
    cr_assert_eq(cfg.num_public_groups, 1);
    cr_assert_str_eq(cfg.public_groups[0], "public:*");
    cr_assert_gt(cfg.jwt_hs256_secret_len, 0);
    cr_assert_eq(config_pending_keys(&cfg, out, sizeof(out)), 0, "%s", out);
}

/* A sample line for every key: active ("key value") or commented ("#key value"). */
Test(config, sample_config_shows_every_key)
{
    char *text = read_all("etc/wsd.conf");
    for (size_t i = 0; config_key_name(i) != NULL; i++) {
        char active[80], commented[80];
        snprintf(active, sizeof(active), "\n%s ", config_key_name(i));
        snprintf(commented, sizeof(commented), "\n#%s ", config_key_name(i));
        cr_assert(strstr(text, active) != NULL || strstr(text, commented) != NULL,
                  "etc/wsd.conf lacks %s", config_key_name(i));
    }
    free(text);
}

/* Each default shown in the embedded text is shown the same way in the sample, unless
 * the sample sets that key. */
Test(config, sample_config_shows_the_embedded_defaults)
{
    char *sample = read_all("etc/wsd.conf");
    char *text = strdup(config_default_text);
    size_t checked = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char want[200], active[80];
        if (line[0] != '#' || line[1] < 'a' || line[1] > 'z')
            continue;
        snprintf(want, sizeof(want), "\n%s\n", line);
        snprintf(active, sizeof(active), "\n%.*s ", (int)strcspn(line + 1, " "), line + 1);
        cr_assert(strstr(sample, want) != NULL || strstr(sample, active) != NULL,
                  "etc/wsd.conf should show \"%s\"", line);
        checked++;
    }
    cr_assert_gt(checked, 40);
    free(text);
    free(sample);
}

/* Every commented-out sample line is valid too. */
Test(config, sample_config_commented_lines_parse)
{
    char *text = read_all("etc/wsd.conf");
    for (char *line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
            struct config c;
            config_init(&c);
            cr_assert_eq(config_parse(&c, "etc/wsd.conf", line + 1, err), 0, "%s", err);
            config_fini(&c);
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
}

Test(config, man_page_documents_every_key)
{
    char *text = read_all("man/wsd.conf.5");
    for (size_t i = 0; config_key_name(i) != NULL; i++) {
        char item[80];
        snprintf(item, sizeof(item), "\n.It Cm %s", config_key_name(i));
        cr_assert_not_null(strstr(text, item), "man/wsd.conf.5 lacks %s", config_key_name(i));
    }
    free(text);
}

/* The EXAMPLES of wsd.conf(5) are valid configurations. */
Test(config, man_page_examples_parse_and_validate)
{
    char *text = read_all("man/wsd.conf.5");
    char *at = strstr(text, "\n.Sh EXAMPLES\n");
    size_t examples = 0;
    cr_assert_not_null(at);
    while ((at = strstr(at, "\n.Bd -literal -offset indent\n")) != NULL) {
        at += strlen("\n.Bd -literal -offset indent\n");
        char *end = strstr(at, "\n.Ed\n");
        cr_assert_not_null(end);
        *end = '\0';
        struct config c;
        config_init(&c);
        cr_assert_eq(config_parse(&c, "example", at, err), 0, "%s", err);
        cr_assert_eq(config_validate(&c, err), 0, "%s", err);
        config_fini(&c);
        examples++;
        at = end + 1;
    }
    cr_assert_eq(examples, 2);
    free(text);
}

/* ---- validation -------------------------------------------------------------------- */

Test(config, validate_requires_cert_and_key_for_tls_listen)
{
    parse_ok("tls_listen 0.0.0.0:443");
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "tls_listen requires tls_cert and tls_key");
    parse_ok("tls_cert /c.pem");
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "tls_listen requires tls_cert and tls_key");
    parse_ok("tls_key /k.pem");
    cr_assert_eq(config_validate(&cfg, err), 0, "%s", err);
}

Test(config, validate_wants_cert_and_key_together)
{
    parse_ok("tls_key /k.pem");
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "tls_cert and tls_key go together: set both or neither");
}

Test(config, validate_prefixes_the_file_name)
{
    static const char text[] = "tls_listen *:443\n";
    char *path = write_temp(text, sizeof(text) - 1);
    char want[256];
    cr_assert_eq(config_load(&cfg, path, err), 0, "%s", err);
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    snprintf(want, sizeof(want), "%s: tls_listen requires tls_cert and tls_key", path);
    cr_assert_str_eq(err, want);
    unlink(path);
}

Test(config, validate_keeps_data_within_message_size)
{
    parse_ok("max_message_size 1k\nmax_data_size 1k");
    cr_assert_eq(config_validate(&cfg, err), 0, "%s", err);
    parse_ok("max_data_size 1025");
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "max_data_size (1025) exceeds max_message_size (1024)");
}

Test(config, validate_wants_distinct_routes)
{
    parse_ok("echo_path /ws");
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "ws_path and echo_path are both \"/ws\"");
    parse_ok("echo_path /echo\nclient_path /metrics");
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "metrics_path and client_path are both \"/metrics\"");
    parse_ok("client_path /wsd.js\necho_path \"\"");
    cr_assert_eq(config_validate(&cfg, err), 0, "%s", err);
}

/* Fields set directly (not through the parser) are still checked. */
Test(config, validate_checks_ranges_and_routes_set_directly)
{
    char *saved = cfg.health_path;
    cfg.heartbeat = 0;
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "heartbeat: 0 is outside 1..86400");
    cfg.heartbeat = 30;
    cfg.compression_level = 10;
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "compression_level: 10 is outside 0..9");
    cfg.compression_level = 1;
    cfg.health_path = (char *)"health";
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "health_path: expected a path starting with '/', got \"health\"");
    cfg.health_path = saved;
    cfg.workers = 0;
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "workers: 0 is outside 1..64");
    cfg.workers = 1;
    cfg.num_listen = 0;
    cr_assert_eq(config_validate(&cfg, err), WSD_EINVAL);
    cr_assert_str_eq(err, "listen: expected 1 to 16 listeners, got 0");
    cfg.num_listen = 1;
    cr_assert_eq(config_validate(&cfg, err), 0, "%s", err);
}

/* ---- pending and changed keys ------------------------------------------------------ */

Test(config, every_key_is_in_effect_none_is_reported_pending)
{
    char out[1024];
    parse_ok("heartbeat 5\nworkers 2\nmax_message_size 1m\nmetrics_allow 10.0.0.0/8\n");
    cr_assert_eq(config_pending_keys(&cfg, out, sizeof(out)), 0, "%s", out);
    parse_ok("anonymous off\nstore lmdb:/var/lib/wsd\nhistory_size 100\noffline_ttl 7d\n"
             "max_data_size 64k\nrate_burst 0\n");
    cr_assert_eq(config_pending_keys(&cfg, out, sizeof(out)), 0, "defaults again: %s", out);
    parse_ok("tls_listen [::]:443\ntls_cert /c\ntls_key /k\nstore redis://r:6379\n"
             "store_sync none\noffline_ttl 1\noffline_max 1\nsession_ttl 1\n"
             "dedup_window 1\ndedup_max 1\nhistory_size 1\nhistory_ttl 1\ngroup x\n"
             "rate_limit 1\nrate_burst 1\naudit_log /a\nanonymous on\npublic_groups p\n"
             "jwt_hs256_secret s\njwt_ed25519_public_key "
             "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\njwt_leeway 1\n"
             "jwt_require_exp on\nauth_timeout 1\nauth_grace 1\nip_allow ::1\n"
             "max_connections_per_ip 1\nmax_data_size 1\n");
    cr_assert_eq(config_pending_keys(&cfg, out, sizeof(out)), 0, "every key is built: %s", out);
}

Test(config, rate_burst_follows_rate_limit_when_left_out)
{
    char out[256];
    parse_ok("rate_limit 5");
    cr_assert_eq(cfg.rate_burst, 10);
    cr_assert_eq(config_pending_keys(&cfg, out, sizeof(out)), 0, "%s", out);
}

Test(config, changed_and_restart_keys_compare_two_configs)
{
    struct config next;
    char out[256];
    config_init(&next);
    cr_assert_eq(config_parse(&next, "n.conf", "heartbeat 9\nmax_connections 10\n"
                              "pid_file /p\nlisten [::1]:8080\n", err), 0, "%s", err);
    cr_assert_eq(config_changed_keys(&cfg, &next, out, sizeof(out)), 4);
    cr_assert_str_eq(out, "listen max_connections heartbeat pid_file");
    cr_assert_eq(config_restart_keys(&cfg, &next, out, sizeof(out)), 2);
    cr_assert_str_eq(out, "max_connections pid_file");
    config_fini(&next);
}

/* ---- CIDR matching ----------------------------------------------------------------- */

Test(config, cidr_match_ipv4_and_ipv6)
{
    parse_ok("ip_allow 10.0.0.0/12 192.168.1.1 2001:db8::/33 ::1");
    const struct config_cidr *l = cfg.ip_allow;
    size_t n = cfg.num_ip_allow;
    cr_assert(cidr_has(l, n, "10.0.0.1"));
    cr_assert(cidr_has(l, n, "10.15.255.255"));
    cr_assert_not(cidr_has(l, n, "10.16.0.0"));
    cr_assert(cidr_has(l, n, "192.168.1.1"));
    cr_assert_not(cidr_has(l, n, "192.168.1.2"));
    cr_assert(cidr_has(l, n, "2001:db8:7fff::1"));
    cr_assert_not(cidr_has(l, n, "2001:db8:8000::1"));
    cr_assert(cidr_has(l, n, "::1"));
    cr_assert_not(cidr_has(l, n, "::2"));
    cr_assert_not(cidr_has(l, 0, "10.0.0.1"), "an empty list matches nothing");
}

Test(config, cidr_match_v4_mapped_addresses_match_ipv4_ranges)
{
    parse_ok("ip_allow 10.0.0.0/8 ::/0");
    cr_assert(cidr_has(cfg.ip_allow, 1, "::ffff:10.1.2.3"));
    cr_assert_not(cidr_has(cfg.ip_allow, 1, "::ffff:11.1.2.3"));
    cr_assert(cidr_has(cfg.ip_allow, 2, "2001:db8::1"));
    cr_assert_not(cidr_has(cfg.ip_allow + 1, 1, "::ffff:11.1.2.3"),
                  "a v4-mapped address is matched as IPv4 only");
    cr_assert_not(cidr_has(cfg.ip_allow + 1, 1, "11.1.2.3"));
    parse_ok("ip_allow 0.0.0.0/0");
    cr_assert(cidr_has(cfg.ip_allow, 1, "::ffff:1.2.3.4"));
    cr_assert(cidr_has(cfg.ip_allow, 1, "255.255.255.255"));
    cr_assert_not(cidr_has(cfg.ip_allow, 1, "::1"));
}

Test(config, cidr_match_rejects_other_families)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    cr_assert_not(config_cidr_match(cfg.metrics_allow, cfg.num_metrics_allow,
                                    (const struct sockaddr *)&un));
    cr_assert_not(config_cidr_match(cfg.metrics_allow, cfg.num_metrics_allow, NULL));
}
