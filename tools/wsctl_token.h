/*
 * wsctl_token.h - `wsctl token`: mints an HS256 token (proto/jwt.h) for a user, locally,
 * with no server: the secret is the jwt_hs256_secret of `-c FILE`, or `--secret S`
 * (raw bytes, or "base64:" and the base64 of the bytes, as in wsd.conf). Claims: sub,
 * iat, exp (now + --ttl when given), join, pub and send (each from its repeated option,
 * absent when not given) and admin.
 */
#ifndef WSD_TOOLS_WSCTL_TOKEN_H
#define WSD_TOOLS_WSCTL_TOKEN_H

#include "tools/wsctl_cli.h"

/* The command (argv[0] is "token"). Prints the token (or {"token":...} with --json).
 * Returns an exit status: 2 without a secret or user, 1 for a configuration without
 * jwt_hs256_secret. */
int wsctl_token(struct wsctl_opts *o, int argc, char **argv);

#endif
