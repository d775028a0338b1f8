/* audit.c - the audit log's lines, gathered and appended (see audit.h). */
#include "core/audit.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/wsd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A worker writes early when an iteration gathers more than this. */
#define AUDIT_FLUSH_AT (64 * 1024)

static int audit_fd = -1;
static bool buffered;
static struct buf out;       /* whole lines not yet written */
static size_t line_start;    /* where the line being built starts in out */
static bool in_line;
static uint64_t dropped;

int audit_open(const char *path)
{
    int fd = -1;
    if (path != NULL && path[0] != '\0') {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd == -1)
            return WSD_EIO;
    }
    audit_flush(); /* what was gathered goes to the file it was gathered for */
    if (audit_fd != -1)
        close(audit_fd);
    audit_fd = fd;
    return 0;
}

void audit_set_buffered(bool on)
{
    buffered = on;
}

void audit_forked(void)
{
    dropped = 0;
}

static void put(const void *p, size_t len)
{
    if (buf_append(&out, p, len) < 0)
        in_line = false; /* out of memory: the line is dropped at audit_end() */
}

static void put_key(const char *key)
{
    put(",\"", 2);
    put(key, strlen(key));
    put("\":", 2);
}

/* A JSON string: quotes, backslashes and control characters escaped; the fields written
   are validated UTF-8 (user ids, group names, mids) or ASCII. */
static void put_string(const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put("\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        put(s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)ch, 0, 0, 0, 0};
        if (ch < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            put(esc, 6);
        } else {
            put(esc, 2);
        }
    }
    put(s + run, len - run);
    put("\"", 1);
}

bool audit_begin(const char *event)
{
    if (audit_fd == -1)
        return false;
    WSD_BUG_ON(in_line);
    in_line = true;
    line_start = out.len;
    int64_t now = clock_wall_ms();
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char head[96];
    int n = snprintf(head, sizeof(head), "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(now % 1000));
    put(head, (size_t)n);
    audit_str("event", event);
    audit_str("role", log_get_role());
    audit_i64("pid", (int64_t)getpid());
    return true;
}

void audit_strn(const char *key, const char *s, size_t len)
{
    if (!in_line)
        return;
    put_key(key);
    put_string(s ? s : "", s ? len : 0);
}

void audit_str(const char *key, const char *s)
{
    audit_strn(key, s, s ? strlen(s) : 0);
}

/* A number: the magnitude, with a minus sign when negative is set. */
static void put_number(const char *key, uint64_t magnitude, bool negative)
{
    if (!in_line)
        return;
    char num[24];
    put_key(key);
    put(num, (size_t)snprintf(num, sizeof(num), "%s%" PRIu64, negative ? "-" : "", magnitude));
}

void audit_u64(const char *key, uint64_t v)
{
    put_number(key, v, false);
}

void audit_i64(const char *key, int64_t v)
{
    put_number(key, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void audit_bool(const char *key, bool v)
{
    if (!in_line)
        return;
    put_key(key);
    put(v ? "true" : "false", v ? 4 : 5);
}

void audit_end(void)
{
    if (audit_fd == -1)
        return;
    if (!in_line || buf_append(&out, "}\n", 2) < 0) {
        out.len = line_start; /* a line that could not be built whole is dropped */
        dropped++;
        in_line = false;
        return;
    }
    in_line = false;
    if (!buffered || out.len >= AUDIT_FLUSH_AT)
        audit_flush();
}

void audit_flush(void)
{
    if (in_line || out.len == 0)
        return;
    size_t off = 0;
    while (audit_fd != -1 && off < out.len) {
        ssize_t n = write(audit_fd, out.data + off, out.len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        /* The file refuses (disk full, I/O error): count the lines lost, say so once in
           a while in the main log. */
        uint64_t lines = 0;
        for (size_t i = off; i < out.len; i++)
            lines += out.data[i] == '\n';
        if (dropped == 0 || (dropped + lines) / 1000 != dropped / 1000)
            log_msg(LOG_ERR, "audit log: write failed, %" PRIu64 " lines lost so far: %s",
                    dropped + lines, strerror(errno));
        dropped += lines;
        break;
    }
    out.len = 0;
    if (out.cap > 4 * AUDIT_FLUSH_AT)
        buf_fini(&out);
}
