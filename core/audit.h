/*
 * audit.h - the audit log (audit_log): one JSON object per line, in a file of its own.
 *
 * Every line starts with "ts" (UTC, milliseconds), "event", "role" ("master",
 * "worker3") and "pid"; the rest depends on the event (wsd.conf(5) lists them). Message
 * bodies are never written. Each process appends its own lines to the file (O_APPEND,
 * every write() holds whole lines, so lines of different processes never mix). A worker
 * gathers the lines of one loop iteration and writes them at its end (audit_flush()),
 * the master writes each line at once.
 *
 * Building a line: audit_begin(event), any number of audit_str/_u64/_bool/_hex, then
 * audit_end(). Between begin and end nothing else may begin a line. When no audit log is
 * open, audit_begin() returns false and the others do nothing.
 */
#ifndef WSD_CORE_AUDIT_H
#define WSD_CORE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Opens path for appending (mode 0640), closing what was open; NULL or "" closes the
 * audit log. Called again with the same path it reopens the file (rotation). Returns 0,
 * or WSD_EIO with errno set (the file open before, if any, stays in use).
 */
int audit_open(const char *path);

/* Lines are written at once (the master) or at audit_flush() (a worker). */
void audit_set_buffered(bool buffered);

/* In a process just forked: the lines lost so far were the parent's (and reported by
 * it); this process counts, and reports, its own from zero. */
void audit_forked(void);

/* Starts a line for event; false when no audit log is open (skip the fields). */
bool audit_begin(const char *event);
void audit_str(const char *key, const char *s);
void audit_strn(const char *key, const char *s, size_t len);
void audit_u64(const char *key, uint64_t v);
void audit_i64(const char *key, int64_t v);
void audit_bool(const char *key, bool v);
void audit_end(void);

/* Writes the gathered lines (end of a worker's loop iteration). */
void audit_flush(void);

#endif
