/* heartbeat.c - pings, pongs, round-trip times and the missed-ping close. */
#include "worker/heartbeat.h"
#include "core/clock.h"
#include "core/log.h"
#include "worker/conn.h"
#include "worker/table.h"
#include "worker/worker.h"

#include <string.h>

static int64_t heartbeat_interval_ms(const struct worker *w)
{
    return (int64_t)w->cfg->heartbeat * 1000;
}

void heartbeat_start(struct worker *w, struct conn *c)
{
    int64_t iv = heartbeat_interval_ms(w);
    /* Spread the first ping over the interval so pings of connections accepted together
       do not all go out in the same millisecond. */
    uint64_t h = (c->id * 0x9E3779B97F4A7C15ull) >> 33;
    c->next_ping_ms = w->now_ms + iv / 2 + (int64_t)(h % (uint64_t)(iv / 2 + 1));
    c->ping_sent_us = 0;
    c->missed_pings = 0;
    c->seen_since_ping = true;
    table_conn_seen(w, c, w->now_ms);
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
        c->missed_pings++;
        table_conn_missed(w, c, c->missed_pings);
        if (c->missed_pings > (uint32_t)w->cfg->heartbeat_misses) {
            log_msg(LOG_INFO, "conn=%llx heartbeat timeout after %u missed pings",
                    (unsigned long long)c->id, c->missed_pings);
            conn_ws_close(w, c, HEARTBEAT_CLOSE_CODE, "heartbeat timeout");
            conn_linger(w, c);
            return;
        }
    }
    c->seen_since_ping = false;
    int64_t ts = clock_mono_us();
    c->ping_sent_us = ts;
    table_conn_ping(w, c, now_ms);
    conn_send_frame(w, c, WS_OP_PING, (const uint8_t *)&ts, sizeof(ts));
}
