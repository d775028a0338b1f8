/*
 * tls.h - TLS on tls_listen connections (OpenSSL, TLS 1.2 and 1.3).
 *
 * A session reads and writes through one small BIO of ours: reads come from the
 * ciphertext the worker has just received (tls_read() does the recv() itself, so the
 * socket's readiness stays the truth for edge-triggered epoll: everything received is
 * decrypted at once and only an unfinished record stays inside OpenSSL), writes go
 * straight to the socket with send(MSG_NOSIGNAL). A write the socket cannot take stays
 * in OpenSSL as one encrypted record; the next tls_write() offers the same bytes again
 * (the head of the output queue) and OpenSSL sends the record.
 *
 * The handshake needs no phase of its own: the first tls_read() calls drive it, and the
 * HTTP request head follows in the same stream. Certificates are loaded per worker at
 * start and again at every reload (new handshakes get the new ones, open sessions keep
 * theirs). Session tickets are encrypted with keys that every process derives from a
 * secret the master draws before it forks, so a client resumes on whichever worker
 * accepts it; the keys change every tls_ticket_rotation seconds (tls.c).
 */
#ifndef WSD_WORKER_TLS_H
#define WSD_WORKER_TLS_H

#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ssl_st;
struct ssl_ctx_st;

/* The largest plaintext of one record. */
#define TLS_RECORD_MAX 16384

/* Draws the session-ticket secret, each key to seal tickets for rotation_s seconds; the
 * master calls it once, before forking workers. Returns 0 or WSD_EIO. */
int tls_global_init(int rotation_s);

/* Steps the ticket keys to the current period, wiping the ones stepped past: the master
 * calls it every second, a worker every tick (and before it seals or opens a ticket). */
void tls_ticket_advance(void);

/*
 * A server context from cfg's tls_cert (PEM, the chain after the certificate) and
 * tls_key. Returns NULL with "tls_cert FILE: reason" (or tls_key) in err. Also what
 * `wsd -t` and every reload use to check the files.
 */
struct ssl_ctx_st *tls_ctx_new(const struct config *cfg, char *err, size_t err_cap);
void tls_ctx_free(struct ssl_ctx_st *ctx);

/* Loads cfg's certificate and key when it names them and frees them again: 0, or a
 * negative code with the reason in err. */
int tls_config_check(const struct config *cfg, char *err, size_t err_cap);

/* A server session on the accepted socket fd; NULL on ENOMEM. */
struct ssl_st *tls_session_new(struct ssl_ctx_st *ctx, int fd);
void tls_session_free(struct ssl_st *ssl);

/* What a tls_read() call found besides its bytes. */
struct tls_read_state {
    bool more;       /* the buffer was the limit: call again, bytes may be left */
    bool want_write; /* the handshake must write and the socket is full: read again once
                        it is writable */
    bool plain_http; /* the "handshake" was a plain HTTP request (-1, EPROTO) */
};

/*
 * Receives from fd and decrypts into dst (len >= 2 * TLS_RECORD_MAX). Returns the
 * plaintext bytes (> 0); 0 when the peer closed (close_notify or end of stream); -1
 * with errno EAGAIN when nothing is there yet (the handshake may have moved on), or
 * EPROTO (not TLS, a failed handshake, a bad record: the reason is logged at debug).
 */
ssize_t tls_read(struct ssl_st *ssl, int fd, uint8_t *dst, size_t len,
                 struct tls_read_state *st);

/*
 * Encrypts and sends the concatenation of iov, one record of up to TLS_RECORD_MAX bytes
 * at a time, until it is all sent or the socket is full. Returns the plaintext bytes
 * sent (0 when the socket took nothing), or WSD_EIO when the session failed. A record
 * the socket did not take stays inside the session: the next call must offer the same
 * bytes first (what was not counted as sent).
 */
int64_t tls_write(struct ssl_st *ssl, const struct iovec *iov, int iovcnt);

/* Sends close_notify if the socket takes it now (never waits). */
void tls_close_notify(struct ssl_st *ssl);

#endif
