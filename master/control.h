/*
 * control.h - the master's control socket (a Unix stream socket, mode 0600) through
 * which wsctl asks for actions. Inspection does not come here: wsctl reads the shared
 * segment directly.
 *
 * One request line per connection, one JSON reply line. A request is a JSON object
 * with a "cmd" member; the argument-free commands may also be sent as the bare word:
 *
 *   {"cmd":"reload"}                         reload (validated first; refused with the
 *                                            reason when the file is invalid)
 *   {"cmd":"stop"}                           graceful shutdown, as on TERM
 *   {"cmd":"kick","conn":ID[,"code":C]}      close connection ID (default code 4009)
 *   {"cmd":"kick","user":"U"[,"code":C]}     close every connection of user U
 *   {"cmd":"send","all":true,"data":V}       a system message to every client
 *   {"cmd":"send","group":"G","data":V}      ... published to group G
 *   {"cmd":"send","user":"U","data":V}       ... sent to user U (personal channel)
 *
 * Replies: {"ok":true, ...details} or {"ok":false,"error":"reason"}. Details: reload
 * "config_generation"; kick by id "conn", "worker"; kick by user "user",
 * "connections", "workers" (array of slots); send "worker" (the slot that executes
 * it) and, for a group or user, "online" (connections under that name now).
 *
 * A close code must be 1000-1003, 1007-1014 or 3000-4999. Every action is logged at
 * NOTICE with the operator's uid and pid ("operator: kick conn=..."): the audit trail.
 * A client gets CONTROL_READ_MS to send its line; the master never waits longer.
 */
#ifndef WSD_MASTER_CONTROL_H
#define WSD_MASTER_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct master;

#define CONTROL_REQUEST_MAX (1u << 20) /* bytes of one request line */
#define CONTROL_READ_MS 1000           /* time a client gets to send its request */
#define CONTROL_KICK_CODE 4009         /* "closed by the operator" */

/* Creates the socket (refusing when another live instance answers on it).
 * Returns 0 or WSD_EIO with the reason in err. */
int control_open(struct master *m, char *err, size_t cap);

/* Closes and removes the socket. */
void control_close(struct master *m);

/* Accepts one client, reads its request, acts and replies. Never blocks longer than
 * CONTROL_READ_MS. */
void control_on_readable(struct master *m);

/* True when code may be sent in a close frame by the operator: 1000-1003, 1007-1014,
 * 3000-4999. */
bool control_code_is_valid(uint32_t code);

#endif
