/*
 * wsctl_cli.h - what every wsctl command shares: the global options, exit statuses,
 * error reporting and argument parsing helpers.
 */
#ifndef WSD_TOOLS_WSCTL_CLI_H
#define WSD_TOOLS_WSCTL_CLI_H

#include "core/wsd.h"

#include <stdbool.h>
#include <stdint.h>

#define WSCTL_DEFAULT_SOCKET "/tmp/wsd.sock"

/* Exit statuses. */
enum {
    WSCTL_EXIT_OK = 0,
    WSCTL_EXIT_ERROR = 1, /* wsd not running, refused, I/O */
    WSCTL_EXIT_USAGE = 2, /* bad command line */
};

/* Options given before the command (and --json anywhere). */
struct wsctl_opts {
    const char *socket; /* the control socket; names the segment too */
    const char *config; /* -c FILE, NULL when not given */
    bool json;          /* machine-readable output: one JSON object */
};

/* A command: parses its own arguments (argv[0] is the command name). Returns an exit
 * status. */
typedef int (*wsctl_cmd_fn)(struct wsctl_opts *o, int argc, char **argv);

/*
 * Reports a runtime error: "wsctl: MESSAGE" on stderr and, with --json, the object
 * {"ok":false,"error":"MESSAGE"} on stdout. Returns WSCTL_EXIT_ERROR.
 */
int wsctl_cli_error(const struct wsctl_opts *o, const char *fmt, ...) WSD_PRINTF(2, 3);

/* Reports a usage error on stderr with a hint to `wsctl --help`. Returns
 * WSCTL_EXIT_USAGE. */
int wsctl_cli_usage_error(const char *fmt, ...) WSD_PRINTF(1, 2);

/*
 * Reports the option error getopt_long() just returned ('?' unknown option, ':' missing
 * value; the option string must start with "+:") for command cmd. Returns
 * WSCTL_EXIT_USAGE.
 */
int wsctl_cli_bad_option(const char *cmd, int c, char **argv);

/*
 * Parses the options of a command that takes none but --json and --help. Returns -1 to
 * go on, or the exit status to return (help shown, usage error).
 */
int wsctl_cli_plain_args(struct wsctl_opts *o, int argc, char **argv);

/* Prints the usage text to stdout (help) or stderr. */
void wsctl_cli_usage(bool to_stdout);

/*
 * Parses a whole unsigned decimal number of at most max (no sign, no blanks).
 * Returns 0 or WSD_EINVAL.
 */
int wsctl_cli_parse_u64(const char *s, uint64_t max, uint64_t *out);

/*
 * Parses a connection id as wsctl prints it (decimal) or as the server logs it ("0x"
 * then hex). Returns 0, or WSD_EINVAL for anything else and for id 0.
 */
int wsctl_cli_parse_conn_id(const char *s, uint64_t *out);

/* Parses a close code an operator may use: 1000-1003, 1007-1014, 3000-4999. Returns 0 or
 * WSD_EINVAL. */
int wsctl_cli_parse_code(const char *s, uint16_t *out);

struct config;

/*
 * Loads o->config once (later calls return the same) into *out; the configuration stays
 * owned here until wsctl_cli_fini(). Returns 0; WSCTL_EXIT_ERROR after reporting a file
 * that does not load (or when no -c was given: *out is then NULL and nothing is
 * reported).
 */
int wsctl_cli_config(const struct wsctl_opts *o, const struct config **out);

/*
 * Sets o->socket when it is NULL: the control_socket of -c FILE when given, else
 * WSCTL_DEFAULT_SOCKET. Returns 0 or WSCTL_EXIT_ERROR (the configuration did not load).
 */
int wsctl_cli_resolve_socket(struct wsctl_opts *o);

/* Releases the configuration wsctl_cli_config() loaded. */
void wsctl_cli_fini(void);

#endif
