/*
 * wsctl_top.h - `wsctl top`: a live view of an instance refreshed every second from the
 * shared segment: its state, message and byte rates computed from the counters' deltas,
 * the workers, and the busiest connections by bytes per second. Ends on q or Ctrl-C
 * (or TERM), or after --iterations frames. On a terminal each frame clears the screen
 * (plain ANSI, no curses); otherwise frames follow each other, and with --json each
 * frame is one JSON object on its own line.
 */
#ifndef WSD_TOOLS_WSCTL_TOP_H
#define WSD_TOOLS_WSCTL_TOP_H

#include "tools/wsctl_cli.h"

#define WSCTL_TOP_INTERVAL_MS 1000
#define WSCTL_TOP_CONNS 10 /* connections shown by default */

/* The command (argv[0] is "top"). Returns an exit status: 1 when wsd is not running or
 * stops meanwhile. */
int wsctl_top(struct wsctl_opts *o, int argc, char **argv);

#endif
