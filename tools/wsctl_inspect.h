/*
 * wsctl_inspect.h - the inspection commands: status, workers, conns, users, groups. Each
 * maps the shared segment read-only, copies what it shows and prints it once (aligned
 * columns, or one JSON object with --json). No round trip to the master.
 *
 * The segment does not record which connection is in which group (each worker keeps
 * that locally); the group table holds member counts per worker. So `conns --group G`
 * shows G's per-worker member counts and lists the connections of the workers that
 * have members of G: a superset of the members, never a guess presented as fact.
 */
#ifndef WSD_TOOLS_WSCTL_INSPECT_H
#define WSD_TOOLS_WSCTL_INSPECT_H

#include "tools/wsctl_cli.h"
#include "tools/wsctl_out.h"
#include "tools/wsctl_seg.h"

/* The commands (argv[0] is the command name). Each returns an exit status. */
int wsctl_inspect_status(struct wsctl_opts *o, int argc, char **argv);
int wsctl_inspect_workers(struct wsctl_opts *o, int argc, char **argv);
int wsctl_inspect_conns(struct wsctl_opts *o, int argc, char **argv);
int wsctl_inspect_users(struct wsctl_opts *o, int argc, char **argv);
int wsctl_inspect_groups(struct wsctl_opts *o, int argc, char **argv);

/* Writes the fields of one worker slot as members of the open JSON object. */
void wsctl_inspect_worker_json(struct wsctl_json *j, const struct wsctl_worker *w);

/* Writes the counters as members of the open JSON object. */
void wsctl_inspect_stats_json(struct wsctl_json *j, const struct wsctl_stats *st);

/* Writes one connection as members of the open JSON object. */
void wsctl_inspect_conn_json(struct wsctl_json *j, const struct wsctl_conn *c);

/* "12.5% of 1.0 MiB"-style ring fill of w into out. Returns out. */
const char *wsctl_inspect_ring_fill(char *out, size_t cap, const struct wsctl_worker *w);

#endif
