/*
 * wsctl.c - the operator tool of wsd: `wsctl [-s SOCKET] [-c FILE] [--json] COMMAND ...`.
 * Inspection commands read the instance's shared segment read-only (wsctl_inspect.h,
 * wsctl_top.h); actions go through the master's control socket (wsctl_ctl.h); token
 * mints a token offline (wsctl_token.h). See wsctl(8).
 */
#include "core/wsd.h"
#include "tools/wsctl_cli.h"
#include "tools/wsctl_ctl.h"
#include "tools/wsctl_inspect.h"
#include "tools/wsctl_token.h"
#include "tools/wsctl_top.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    wsctl_cmd_fn fn;
    bool needs_socket;
} wsctl_commands[] = {
    {"status", wsctl_inspect_status, true}, {"workers", wsctl_inspect_workers, true},
    {"conns", wsctl_inspect_conns, true},   {"users", wsctl_inspect_users, true},
    {"groups", wsctl_inspect_groups, true}, {"top", wsctl_top, true},
    {"reload", wsctl_ctl_reload, true},     {"stop", wsctl_ctl_stop, true},
    {"kick", wsctl_ctl_kick, true},         {"send", wsctl_ctl_send, true},
    {"token", wsctl_token, false},
};

/* Parses the options before the command. Returns -1 to go on, or an exit status. */
static int wsctl_global_args(struct wsctl_opts *o, int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'}, {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'J'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 's': o->socket = optarg; break;
        case 'c': o->config = optarg; break;
        case 'J': o->json = true; break;
        case 'h': wsctl_cli_usage(true); return WSCTL_EXIT_OK;
        case 'V': printf("wsctl %s\n", WSD_VERSION); return WSCTL_EXIT_OK;
        default: return wsctl_cli_bad_option("wsctl", c, argv);
        }
    }
    if (o->socket != NULL && o->socket[0] == '\0')
        return wsctl_cli_usage_error("-s needs a socket path");
    if (optind == argc)
        return wsctl_cli_usage_error("no command given");
    return -1;
}

int main(int argc, char **argv)
{
    struct wsctl_opts o = {0};
    int rc = wsctl_global_args(&o, argc, argv);
    if (rc >= 0)
        return rc;
    const char *name = argv[optind];
    for (size_t i = 0; i < WSD_ARRAY_LEN(wsctl_commands); i++) {
        if (strcmp(name, wsctl_commands[i].name) != 0)
            continue;
        int first = optind;
        if (wsctl_commands[i].needs_socket && wsctl_cli_resolve_socket(&o) != 0)
            rc = WSCTL_EXIT_ERROR;
        else
            rc = wsctl_commands[i].fn(&o, argc - first, argv + first);
        wsctl_cli_fini();
        fflush(stdout);
        return rc;
    }
    return wsctl_cli_usage_error("unknown command %s", name);
}
