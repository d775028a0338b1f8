/*
 * wsctl_ctl.h - the action commands, which go through the master's control socket
 * (master/control.h describes the request and reply lines): reload, stop, kick, send.
 * Each sends one request and prints the reply: a line of text, or with --json the
 * master's reply object as received. A refusal ({"ok":false}) exits 1 with its reason.
 */
#ifndef WSD_TOOLS_WSCTL_CTL_H
#define WSD_TOOLS_WSCTL_CTL_H

#include "core/buf.h"
#include "tools/wsctl_cli.h"

#include <stddef.h>

#define WSCTL_CTL_TIMEOUT_MS 10000 /* wait for the master's reply at most this long */
#define WSCTL_CTL_REPLY_MAX 65536

/*
 * Sends req[0..len) and a newline to the control socket o->socket and reads the reply
 * line (without its newline) into reply, which the caller initialised and releases.
 * Returns 0; WSCTL_EXIT_ERROR after reporting "cannot connect to SOCKET: ...", a
 * timeout, or a connection closed without a reply.
 */
int wsctl_ctl_request(const struct wsctl_opts *o, const void *req, size_t len,
                      struct buf *reply);

/* The commands (argv[0] is the command name). Each returns an exit status. */
int wsctl_ctl_reload(struct wsctl_opts *o, int argc, char **argv);
int wsctl_ctl_stop(struct wsctl_opts *o, int argc, char **argv);
int wsctl_ctl_kick(struct wsctl_opts *o, int argc, char **argv);
int wsctl_ctl_send(struct wsctl_opts *o, int argc, char **argv);

#endif
