/* log.c - line-oriented logging to stderr or a file. */
#include "core/log.h"
#include "core/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "notice", "warn", "error", "crit"};
static enum log_level min_level = LOG_INFO;
static char role[32] = "wsd";
static int log_fd = STDERR_FILENO;

void log_set_role(const char *r)
{
    snprintf(role, sizeof(role), "%s", r);
}

const char *log_get_role(void)
{
    return role;
}

void log_set_level(enum log_level level)
{
    min_level = level;
}

enum log_level log_get_level(void)
{
    return min_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return WSD_EINVAL;
}

int log_open(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        if (log_fd != STDERR_FILENO)
            close(log_fd);
        log_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1)
        return WSD_EIO;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    int saved_errno = errno;
    char line[2048];
    int64_t now = clock_wall_ms();
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s role=%s pid=%d msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(now % 1000), level_names[level], role, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : WSD_MIN((size_t)m, sizeof(line) - (size_t)n - 3));
    line[len++] = '"';
    line[len++] = '\n';
    ssize_t w = write(log_fd, line, len);
    (void)w;
    errno = saved_errno;
}
