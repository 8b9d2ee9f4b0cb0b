/* irccodec.h - IRC (the Modern IRC client protocol, with the IRCv3
 * capabilities of docs/protocol.md) as a codec on the hub: the channel #lobby is
 * the room #lobby. */
#ifndef NATTER_IRCCODEC_H
#define NATTER_IRCCODEC_H

#include "server/codec.h"

extern const struct codec irc_codec;

/* The server's IRC settings, before any connection: name (the prefix of every
 * server message), network, a server password (NULL: none) and the MOTD file
 * (NULL: none). Returns 0, or -1 with errno set when the MOTD cannot be read. */
int irc_setup(const char *server_name, const char *network, const char *password, const char *motd_path);
/* IRCv3 sts: the IRC TLS port (0: none) and the policy's duration in seconds. */
void irc_set_sts(int port, long duration);
/* A reload: read the MOTD file again (NULL: no MOTD file). Returns 0, or -1
 * with errno set, keeping the MOTD in use. */
int irc_reload_motd(const char *motd_path);
void irc_teardown(void);

#endif
