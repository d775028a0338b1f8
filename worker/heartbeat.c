/* heartbeat.c - pings, pongs, round-trip times and the missed-ping count. */
#include "worker/heartbeat.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "worker/conn.h"
#include "worker/table.h"
#include "worker/worker.h"

#include <string.h>

int64_t heartbeat_timeout_ms(const struct config *cfg)
{
    return (int64_t)cfg->heartbeat * ((int64_t)cfg->heartbeat_misses + 1) * 1000;
}

bool heartbeat_is_overdue(const struct config *cfg, int64_t last_seen_ms, int64_t now_ms)
{
    return now_ms - last_seen_ms > heartbeat_timeout_ms(cfg);
}

static int64_t heartbeat_interval_ms(const struct worker *w)
{
    return (int64_t)w->cfg->heartbeat * 1000;
}

/*
 * When c's first ping falls: in the second half of the interval, at a point that
 * depends on the connection id, so pings of connections accepted together do not all
 * go out in the same millisecond.
 */
static int64_t heartbeat_first_ping_ms(const struct worker *w, const struct conn *c)
{
    int64_t iv = heartbeat_interval_ms(w);
    uint64_t h = (c->id * 0x9E3779B97F4A7C15ull) >> 33;
    return w->now_ms + iv / 2 + (int64_t)(h % (uint64_t)(iv / 2 + 1));
}

void heartbeat_start(struct worker *w, struct conn *c)
{
    c->next_ping_ms = heartbeat_first_ping_ms(w, c);
    c->ping_sent_us = 0;
    c->missed_pings = 0;
    c->seen_since_ping = true;
    table_conn_seen(w, c, w->now_ms);
}

void heartbeat_reschedule(struct worker *w, struct conn *c)
{
    int64_t first = heartbeat_first_ping_ms(w, c);
    if (first < c->next_ping_ms)
        c->next_ping_ms = first;
}

void heartbeat_on_sign_of_life(struct worker *w, struct conn *c)
{
    c->seen_since_ping = true;
    c->missed_pings = 0;
    table_conn_seen(w, c, w->now_ms);
}

void heartbeat_on_pong(struct worker *w, struct conn *c, const uint8_t *p, size_t len)
{
    int64_t sent;
    if (len != sizeof(sent) || c->ping_sent_us == 0)
        return;
    memcpy(&sent, p, sizeof(sent));
    if (sent != c->ping_sent_us)
        return;
    int64_t rtt = clock_mono_us() - sent;
    c->ping_sent_us = 0;
    table_conn_rtt(w, c, rtt < 0 ? 0 : (uint32_t)WSD_MIN(rtt, (int64_t)UINT32_MAX));
}

void heartbeat_tick(struct worker *w, struct conn *c, int64_t now_ms)
{
    if (now_ms < c->next_ping_ms || c->close_sent)
        return;
    c->next_ping_ms = now_ms + heartbeat_interval_ms(w);
    if (!c->seen_since_ping) {
        if (c->missed_pings < UINT8_MAX)
            c->missed_pings++;
        table_conn_missed(w, c, c->missed_pings);
    }
    c->seen_since_ping = false;
    int64_t ts = clock_mono_us();
    c->ping_sent_us = ts;
    table_conn_ping(w, c, now_ms);
    conn_send_frame(w, c, WS_OP_PING, (const uint8_t *)&ts, sizeof(ts));
}
