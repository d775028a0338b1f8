/* wsctl_cli.c - global options, errors and argument parsing shared by the commands. */
#include "tools/wsctl_cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "proto/json.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct config cli_cfg;
static bool cli_cfg_loaded;

static const char cli_usage_text[] =
    "usage: wsctl [-s SOCKET] [-c FILE] [--json] COMMAND [ARGS]\n"
    "\n"
    "inspection (reads the shared segment read-only):\n"
    "  status                        the instance, its workers and totals\n"
    "  workers                       one line per worker slot in use\n"
    "  conns [--user U] [--group G] [--worker N]\n"
    "                                connections\n"
    "  users                         users online: connections and workers\n"
    "  groups                        groups: members, per worker\n"
    "  top [--iterations N] [--conns N]\n"
    "                                live view refreshed every second; q quits\n"
    "actions (through the control socket):\n"
    "  reload                        re-read the configuration (refused when invalid)\n"
    "  stop                          graceful shutdown\n"
    "  kick CONN [--code C]          close one connection (default code 4009)\n"
    "  kick --user U [--code C]      close every connection of a user\n"
    "  send (--all | --group G | --user U) (TEXT... | --data JSON)\n"
    "                                a system message (\"sys\": true, from \"\")\n"
    "offline:\n"
    "  token --user U [--join P]... [--pub P]... [--send P]... [--admin] [--ttl S]\n"
    "        [-c FILE | --secret S]  mint an HS256 token\n"
    "\n"
    "options:\n"
    "  -s, --socket SOCKET  control socket (default: control_socket of -c FILE, else\n"
    "                       " WSCTL_DEFAULT_SOCKET ")\n"
    "  -c, --config FILE    the wsd configuration file\n"
    "      --json           machine-readable output: one JSON object\n"
    "  -h, --help           print this help\n"
    "  -V, --version        print the version\n"
    "exit status: 0 success, 1 error, 2 usage error\n";

void wsctl_cli_usage(bool to_stdout)
{
    fputs(cli_usage_text, to_stdout ? stdout : stderr);
}

int wsctl_cli_error(const struct wsctl_opts *o, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "wsctl: %s\n", msg);
    if (o != NULL && o->json) {
        struct buf b;
        buf_init(&b);
        if (json_write_string(&b, msg, strlen(msg)) == 0)
            printf("{\"ok\":false,\"error\":%.*s}\n", (int)b.len, (const char *)b.data);
        else
            printf("{\"ok\":false,\"error\":\"error\"}\n");
        buf_fini(&b);
    }
    return WSCTL_EXIT_ERROR;
}

int wsctl_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("wsctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see wsctl --help)\n", stderr);
    return WSCTL_EXIT_USAGE;
}

int wsctl_cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return wsctl_cli_usage_error("%s: option %s needs a value", cmd, arg);
    if (optopt != 0)
        return wsctl_cli_usage_error("%s: unknown option -%c", cmd, optopt);
    return wsctl_cli_usage_error("%s: unknown option %s", cmd, arg);
}

int wsctl_cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return WSD_EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return WSD_EINVAL;
    *out = v;
    return 0;
}

int wsctl_cli_parse_conn_id(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s != NULL && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)) {
        const char *h = s + 2;
        if (h[0] == '\0' || strspn(h, "0123456789abcdefABCDEF") != strlen(h) ||
            strlen(h) > 16)
            return WSD_EINVAL;
        v = strtoull(h, NULL, 16);
    } else if (wsctl_cli_parse_u64(s, UINT64_MAX, &v) < 0) {
        return WSD_EINVAL;
    }
    if (v == 0)
        return WSD_EINVAL;
    *out = v;
    return 0;
}

int wsctl_cli_parse_code(const char *s, uint16_t *out)
{
    uint64_t v;
    if (wsctl_cli_parse_u64(s, 4999, &v) < 0)
        return WSD_EINVAL;
    bool ok = (v >= 1000 && v <= 1003) || (v >= 1007 && v <= 1014) || v >= 3000;
    if (!ok)
        return WSD_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

int wsctl_cli_config(const struct wsctl_opts *o, const struct config **out)
{
    char err[CONFIG_ERR_LEN];
    *out = NULL;
    if (o->config == NULL)
        return WSCTL_EXIT_ERROR;
    if (!cli_cfg_loaded) {
        config_init(&cli_cfg);
        if (config_load(&cli_cfg, o->config, err) < 0) {
            config_fini(&cli_cfg);
            return wsctl_cli_error(o, "%s", err);
        }
        cli_cfg_loaded = true;
    }
    *out = &cli_cfg;
    return 0;
}

int wsctl_cli_resolve_socket(struct wsctl_opts *o)
{
    if (o->socket != NULL)
        return 0;
    const struct config *cfg = NULL;
    if (o->config != NULL && wsctl_cli_config(o, &cfg) != 0)
        return WSCTL_EXIT_ERROR;
    o->socket = cfg && cfg->control_socket && cfg->control_socket[0] ? cfg->control_socket
                                                                     : WSCTL_DEFAULT_SOCKET;
    return 0;
}

void wsctl_cli_fini(void)
{
    if (cli_cfg_loaded)
        config_fini(&cli_cfg);
    cli_cfg_loaded = false;
}

int wsctl_cli_plain_args(struct wsctl_opts *o, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == 'J') {
            o->json = true;
        } else if (c == 'h') {
            wsctl_cli_usage(true);
            return WSCTL_EXIT_OK;
        } else {
            return wsctl_cli_bad_option(argv[0], c, argv);
        }
    }
    if (optind != argc)
        return wsctl_cli_usage_error("%s takes no arguments", argv[0]);
    return -1;
}
