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

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

/* Ciphertext taken per tls_read(); the plaintext of it and of one unfinished record
   carried over from the last read always fits the caller's buffer (tls.h). */
#define TLS_CBUF_LEN (256 * 1024)
#define TLS_TICKET_KEYS_LEN 80

static BIO_METHOD *bio_method;
static uint8_t *cbuf;               /* the ciphertext of the read in progress */
static const uint8_t *win;          /* what the read BIO hands OpenSSL next */
static size_t win_len;
static uint8_t stage[TLS_RECORD_MAX]; /* small writes gathered into one record */
static uint8_t ticket_keys[TLS_TICKET_KEYS_LEN];
static bool have_ticket_keys;

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

int tls_global_init(void)
{
    if (RAND_bytes(ticket_keys, sizeof(ticket_keys)) != 1)
        return WSD_EIO;
    have_ticket_keys = true;
    return 0;
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
    if (have_ticket_keys)
        SSL_CTX_set_tlsext_ticket_keys(ctx, ticket_keys, sizeof(ticket_keys));
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
