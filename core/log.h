/*
 * log.h - one line per event, key=value. Goes to stderr until log_open() names a file.
 * Never call from a signal handler or under a shared-memory lock.
 */
#ifndef WSD_CORE_LOG_H
#define WSD_CORE_LOG_H

#include "core/wsd.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_NOTICE, LOG_WARN, LOG_ERR, LOG_CRIT };

/* Sets the process role shown in each line ("master", "worker3"). */
void log_set_role(const char *role);
const char *log_get_role(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "notice", "warn", "error", "crit". Returns 0 or WSD_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * Directs the log to path (appending), or to stderr when path is NULL or empty.
 * Called again with the same path it reopens the file (USR1). Returns 0 or WSD_EIO.
 */
int log_open(const char *path);

/* Writes one line: ts, level, role, pid, then msg="..." with the formatted text. */
void log_msg(enum log_level level, const char *fmt, ...) WSD_PRINTF(2, 3);

#endif
