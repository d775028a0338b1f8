/*
 * wsctl_seg.h - wsctl's read-only view of a running instance's shared segment: opening
 * it with an operator-readable reason when that fails, and consistent copies of the
 * worker slots, connections, users and groups. Nothing here writes to the segment or
 * takes one of its locks.
 */
#ifndef WSD_TOOLS_WSCTL_SEG_H
#define WSD_TOOLS_WSCTL_SEG_H

#include "shm/conn_table.h"
#include "shm/names.h"
#include "shm/seg.h"
#include "tools/wsctl_cli.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsctl_seg {
    struct shm_seg seg;
    char name[SHM_SEG_NAME_LEN];
};

/* The counters of a worker slot (plain copies of struct shm_seg_worker_stats). */
struct wsctl_stats {
    uint64_t msgs_in;
    uint64_t msgs_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t deliveries;
    uint64_t delivery_failures;
    uint64_t dedup_hits;
    uint64_t ring_full_retries;
    uint64_t handshakes_ok;
    uint64_t handshakes_failed;
};

/* One worker slot in use. */
struct wsctl_worker {
    uint32_t slot;
    int32_t pid;
    uint32_t state;
    uint32_t restarts;
    uint32_t connections;
    int64_t started_wall_ms;
    int64_t loop_mono_ms;
    uint64_t ring_used;
    uint64_t ring_size;
    struct wsctl_stats stats;
};

/* One used connection slot with its user id resolved ("" when it has none). */
struct wsctl_conn {
    struct conn_table_info info;
    bool has_user;
    char user[NAMES_NAME_MAX + 1];
};

/* One used entry of the user index or the group table. */
struct wsctl_name {
    char name[NAMES_NAME_MAX + 1];
    uint32_t total;
    uint64_t worker_mask;
    uint32_t counts[NAMES_WORKERS];
};

/*
 * Maps the segment of the instance whose control socket is o->socket. On failure
 * reports why (not running, stale segment of a dead master, permission denied, layout
 * version not supported) through wsctl_cli_error() and returns WSCTL_EXIT_ERROR; else
 * returns 0 and s must be closed with wsctl_seg_close().
 */
int wsctl_seg_open(struct wsctl_seg *s, const struct wsctl_opts *o);

void wsctl_seg_close(struct wsctl_seg *s);

/* True while the master process recorded in the segment exists. */
bool wsctl_seg_master_alive(const struct wsctl_seg *s);

/* Names of the run state ("running", "draining", ...), worker states and connection
 * states; "unknown" for anything else. */
const char *wsctl_seg_run_state_name(uint32_t state);
const char *wsctl_seg_worker_state_name(uint32_t state);
const char *wsctl_seg_conn_state_name(uint32_t state);

/*
 * Copies the worker slots in use (a process, or a state other than empty) into
 * out[0..SHM_SEG_WORKERS). Returns how many.
 */
size_t wsctl_seg_workers(const struct wsctl_seg *s, struct wsctl_worker *out);

/* Sums the counters of every worker slot (a restarted worker keeps its slot's sums). */
void wsctl_seg_totals(const struct wsctl_seg *s, struct wsctl_stats *out);

/*
 * Copies every used connection slot, in table order, into a new array *out of *n
 * entries (free() it; NULL when none). A slot that keeps changing hands while read is
 * left out. Returns 0 or WSD_ENOMEM.
 */
int wsctl_seg_conns(const struct wsctl_seg *s, struct wsctl_conn **out, size_t *n);

/*
 * Copies the used entries of the user index (users true) or the group table, sorted by
 * name, into a new array *out of *n entries (free() it). Entries read while they
 * change may be torn; entries with no connection are left out. Returns 0 or
 * WSD_ENOMEM.
 */
int wsctl_seg_names(const struct wsctl_seg *s, bool users, struct wsctl_name **out,
                    size_t *n);

/* Finds name in a sorted array from wsctl_seg_names(); NULL when absent. */
const struct wsctl_name *wsctl_seg_find_name(const struct wsctl_name *v, size_t n,
                                             const char *name);

#endif
