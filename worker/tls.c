/* tls.c - TLS sessions over the worker's sockets (see tls.h). */
#include "worker/tls.h"
#include "core/log.h"
#include "core/wsd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

/* Ciphertext taken per tls_read(); the plaintext of it and of one unfinished record
   carried over from the last read always fits the caller's buffer (tls.h). */
#define TLS_CBUF_LEN (256 * 1024)
#define TLS_TICKET_SECRET_LEN 32
#define TLS_TICKET_STEPS_MAX 10000 /* chain steps per call: a clock jumped far ahead is
                                      caught up over several ticks, not in one */

static BIO_METHOD *bio_method;
static uint8_t *cbuf;               /* the ciphertext of the read in progress */
static const uint8_t *win;          /* what the read BIO hands OpenSSL next */
static size_t win_len;
static uint8_t stage[TLS_RECORD_MAX]; /* small writes gathered into one record */
/*
 * Session-ticket keys, a one-way chain: the secret of period n + 1 is the SHA-256 of
 * "wsd ticket ratchet" and the secret of period n, and period n runs from n * rotation
 * seconds after the Unix epoch, so every process agrees on it without talking. Tickets
 * are sealed with the current period's keys and opened with its or the previous one's
 * (then renewed): a ticket resumes for one to two periods. Each process steps its copy
 * as periods pass and wipes what it steps past; the master steps its own every second,
 * so a worker forked later inherits no older secret and none older can be recomputed.
 */
static struct {
    bool on;
    int64_t rotation;   /* seconds */
    uint64_t period;
    uint8_t cur[TLS_TICKET_SECRET_LEN];
    uint8_t prev[TLS_TICKET_SECRET_LEN];
    bool have_prev;
} tk;

/* The session failed: later reads report it at once (SSL app data). */
#define TLS_FAILED ((void *)1)

/* ---- the BIO: reads from the window, writes to the socket ---- */

static int bio_read(BIO *b, char *out, int cap)
{
    BIO_clear_retry_flags(b);
    if (win_len == 0 || cap <= 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = WSD_MIN(win_len, (size_t)cap);
    memcpy(out, win, n);
    win += n;
    win_len -= n;
    return (int)n;
}

static int bio_write(BIO *b, const char *in, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(fd, in, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return -1;
    }
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *tls_bio_method(void)
{
    if (bio_method != NULL)
        return bio_method;
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wsd socket");
    if (m == NULL || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return NULL;
    }
    return bio_method = m;
}

/* ---- contexts ---- */

/* The reason of the last OpenSSL error, for a log line or err. */
static const char *tls_reason(void)
{
    static char text[160];
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return "unknown error";
    const char *r = ERR_reason_error_string(e);
    snprintf(text, sizeof(text), "%s", r ? r : "unknown error");
    return text;
}

static uint64_t ticket_period_now(void)
{
    time_t now = time(NULL);
    return now > 0 ? (uint64_t)now / (uint64_t)tk.rotation : 0;
}

static void ticket_hash(const uint8_t *secret, const char *label, uint8_t out[32])
{
    uint8_t in[TLS_TICKET_SECRET_LEN + 32];
    size_t llen = strlen(label);
    memcpy(in, label, llen);
    memcpy(in + llen, secret, TLS_TICKET_SECRET_LEN);
    unsigned int n = 32;
    EVP_Digest(in, llen + TLS_TICKET_SECRET_LEN, out, &n, EVP_sha256(), NULL);
    OPENSSL_cleanse(in, sizeof(in));
}

void tls_ticket_advance(void)
{
    if (!tk.on)
        return;
    uint64_t target = ticket_period_now();
    if (target <= tk.period)
        return; /* this period, or the clock went back: keep the keys */
    for (int i = 0; tk.period < target && i < TLS_TICKET_STEPS_MAX; i++) {
        memcpy(tk.prev, tk.cur, sizeof(tk.prev));
        ticket_hash(tk.prev, "wsd ticket ratchet", tk.cur);
        tk.period++;
    }
    tk.have_prev = true; /* (skipping periods, prev is the one just before cur) */
}

int tls_global_init(int rotation_s)
{
    tk.rotation = rotation_s > 0 ? rotation_s : 3600;
    if (RAND_bytes(tk.cur, sizeof(tk.cur)) != 1)
        return WSD_EIO;
    tk.period = ticket_period_now();
    tk.have_prev = false;
    tk.on = true;
    return 0;
}

/* Period secret -> ticket key name (16 bytes), AES-256 key and HMAC-SHA-256 key. */
struct ticket_keys {
    uint8_t name[32];
    uint8_t aes[32];
    uint8_t mac[32];
};

static void ticket_keys_of(const uint8_t *secret, struct ticket_keys *k)
{
    ticket_hash(secret, "wsd ticket name", k->name);
    ticket_hash(secret, "wsd ticket aes", k->aes);
    ticket_hash(secret, "wsd ticket mac", k->mac);
}

static int ticket_keys_use(const struct ticket_keys *k, unsigned char *iv,
                           EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->mac, sizeof(k->mac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) != 1 ||
        EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return 0;
}

/* OpenSSL's ticket callback: seal with this period's keys; open with this period's (1)
 * or the previous one's (2: renew the ticket); 0 for an unknown key (full handshake). */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    tls_ticket_advance();
    struct ticket_keys k;
    int rc = 0;
    if (enc) {
        ticket_keys_of(tk.cur, &k);
        memcpy(key_name, k.name, 16);
        rc = RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 &&
                     ticket_keys_use(&k, iv, cctx, hctx, 1) == 0
                 ? 1
                 : -1;
    } else {
        ticket_keys_of(tk.cur, &k);
        if (memcmp(key_name, k.name, 16) == 0) {
            rc = 1;
        } else if (tk.have_prev) {
            ticket_keys_of(tk.prev, &k);
            rc = memcmp(key_name, k.name, 16) == 0 ? 2 : 0;
        }
        if (rc > 0 && ticket_keys_use(&k, iv, cctx, hctx, 0) < 0)
            rc = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

struct ssl_ctx_st *tls_ctx_new(const struct config *cfg, char *err, size_t err_cap)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, err_cap, "TLS context: %s", tls_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    /* Resumption by ticket only: a per-worker session cache would miss on the others. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    if (tk.on) {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        /* The lifetime hint and OpenSSL's own age check stay above the two periods a
           key lives: the keys decide when a ticket stops resuming. */
        SSL_CTX_set_timeout(ctx, (long)(3 * tk.rotation));
    }
    const char *what = NULL, *path = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
        what = "tls_cert", path = cfg->tls_cert;
    else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1)
        what = "tls_key", path = cfg->tls_key;
    else if (SSL_CTX_check_private_key(ctx) != 1)
        what = "tls_key", path = cfg->tls_key;
    if (what != NULL) {
        snprintf(err, err_cap, "%s %s: %s", what, path, tls_reason());
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

int tls_config_check(const struct config *cfg, char *err, size_t err_cap)
{
    if (cfg->tls_cert == NULL || cfg->tls_cert[0] == '\0')
        return 0;
    SSL_CTX *ctx = tls_ctx_new(cfg, err, err_cap);
    if (ctx == NULL)
        return WSD_EINVAL;
    SSL_CTX_free(ctx);
    return 0;
}

/* ---- sessions ---- */

struct ssl_st *tls_session_new(struct ssl_ctx_st *ctx, int fd)
{
    BIO_METHOD *m = tls_bio_method();
    if (m == NULL)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    BIO *b = BIO_new(m);
    if (ssl == NULL || b == NULL) {
        SSL_free(ssl);
        BIO_free(b);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, b, b);
    SSL_set_accept_state(ssl);
    return ssl;
}

void tls_session_free(struct ssl_st *ssl)
{
    SSL_free(ssl);
}

/* Logs why a session failed, once, and marks it. Returns the OpenSSL reason code. */
static int tls_fail(SSL *ssl, int fd, const char *during)
{
    int reason = ERR_GET_REASON(ERR_peek_last_error());
    log_msg(LOG_DEBUG, "fd=%d TLS %s failed: %s", fd, during, tls_reason());
    ERR_clear_error();
    SSL_set_app_data(ssl, TLS_FAILED);
    return reason;
}

ssize_t tls_read(struct ssl_st *ssl, int fd, uint8_t *dst, size_t len,
                 struct tls_read_state *st)
{
    st->more = false;
    st->want_write = false;
    st->plain_http = false;
    if (SSL_get_app_data(ssl) == TLS_FAILED) {
        errno = EPROTO;
        return -1;
    }
    if (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN)
        return 0;
    if (cbuf == NULL && (cbuf = malloc(TLS_CBUF_LEN)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t want = WSD_MIN(len - 2 * TLS_RECORD_MAX, (size_t)TLS_CBUF_LEN);
    ssize_t n = recv(fd, cbuf, want, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        return n; /* end of stream, or errno from recv */
    /* Nothing new (n < 0) still goes through SSL_read: a handshake flight the socket
       refused before is written from there once the socket takes it. */
    st->more = n > 0 && (size_t)n == want;
    win = cbuf;
    win_len = n > 0 ? (size_t)n : 0;
    size_t got = 0;
    bool ended = false;
    while (got < len) {
        size_t k = 0;
        ERR_clear_error();
        int r = SSL_read_ex(ssl, dst + got, len - got, &k);
        if (r == 1) {
            got += k;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_WRITE)
            st->want_write = true;
        else if (e == SSL_ERROR_ZERO_RETURN)
            ended = true;
        else if (e != SSL_ERROR_WANT_READ) {
            bool hs = !SSL_is_init_finished(ssl);
            st->plain_http = tls_fail(ssl, fd, hs ? "handshake" : "read") == SSL_R_HTTP_REQUEST;
            ended = true;
        }
        break;
    }
    win_len = 0;
    if (got > 0) {
        st->more = st->more || ended || got == len; /* the end is reported by the next call */
        return (ssize_t)got;
    }
    if (!ended) {
        errno = EAGAIN;
        return -1;
    }
    if (SSL_get_app_data(ssl) == TLS_FAILED) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int64_t tls_write(struct ssl_st *ssl, const struct iovec *iov, int iovcnt)
{
    if (!SSL_is_init_finished(ssl) || SSL_get_app_data(ssl) == TLS_FAILED) {
        errno = EPROTO; /* a reply before the handshake ended (a 408): nothing to send on */
        return WSD_EIO;
    }
    int64_t sent = 0;
    int i = 0;
    size_t off = 0; /* into iov[i] */
    for (;;) {
        while (i < iovcnt && off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        if (i == iovcnt)
            return sent;
        /* One record: straight from a part that fills it (or is the last), else gathered. */
        const uint8_t *p = (const uint8_t *)iov[i].iov_base + off;
        size_t n = iov[i].iov_len - off;
        if (n >= TLS_RECORD_MAX || i + 1 == iovcnt) {
            n = WSD_MIN(n, (size_t)TLS_RECORD_MAX);
        } else {
            n = 0;
            for (int j = i; j < iovcnt && n < TLS_RECORD_MAX; j++) {
                size_t from = j == i ? off : 0;
                size_t take = WSD_MIN(iov[j].iov_len - from, TLS_RECORD_MAX - n);
                memcpy(stage + n, (const uint8_t *)iov[j].iov_base + from, take);
                n += take;
            }
            p = stage;
        }
        size_t k = 0;
        ERR_clear_error();
        if (SSL_write_ex(ssl, p, n, &k) != 1) {
            int e = SSL_get_error(ssl, 0);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                return sent;
            int fd = (int)(intptr_t)BIO_get_data(SSL_get_wbio(ssl));
            if (e == SSL_ERROR_SYSCALL && errno != 0)
                log_msg(LOG_DEBUG, "fd=%d TLS write failed: %s", fd, strerror(errno));
            else
                tls_fail(ssl, fd, "write");
            ERR_clear_error();
            SSL_set_app_data(ssl, TLS_FAILED);
            return WSD_EIO;
        }
        sent += (int64_t)k;
        /* Step over the k bytes sent. */
        while (k > 0) {
            size_t left = iov[i].iov_len - off;
            if (k < left) {
                off += k;
                break;
            }
            k -= left;
            i++;
            off = 0;
        }
    }
}

void tls_close_notify(struct ssl_st *ssl)
{
    if (SSL_is_init_finished(ssl) && SSL_get_app_data(ssl) != TLS_FAILED &&
        !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl);
    ERR_clear_error();
}
