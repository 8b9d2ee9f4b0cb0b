/* ircuser.h - what an IRC connection keeps (its registration, capabilities,
 * user name), the server's IRC settings, and how a connection is answered
 * (lines, numerics, the nick!user@host of any hub user). Below the encoder
 * (ircencode.c), the commands (irccmds.c) and the codec (irccodec.c).
 */
#ifndef NATTER_IRCUSER_H
#define NATTER_IRCUSER_H

#include <stddef.h>
#include <stdint.h>

#include "server/codecs/irc/ircmsg.h"
#include "server/conn.h"
#include "server/hub.h"

/* The server's IRC settings (natterd's --server-name, --network, --irc-motd,
 * --irc-password), set once before any connection (irc_configure). */
struct irc_config {
    const char *server_name;
    const char *network;
    const char *password;  /* NULL: none */
    char **motd;           /* its lines, NULL-terminated; NULL: no MOTD */
    char created[64];      /* when the server started, for 003 */
    /* Strict Transport Security (IRCv3 sts): the IRC TLS port to advertise on
     * plain connections (0: no IRC TLS listener, no sts), and how long a client
     * should keep to TLS, advertised on TLS connections. */
    int sts_port;
    long sts_duration;
};
extern struct irc_config irc_conf;

/* Capabilities (CAP), as bits of irc_state.caps. Those that change the bytes
 * of broadcasts are also the user's hub variant (IRC_VARIANT_CAPS). */
enum {
    CAP_SERVER_TIME = 1 << 0,
    CAP_MESSAGE_TAGS = 1 << 1,
    CAP_AWAY_NOTIFY = 1 << 2,
    CAP_ECHO_MESSAGE = 1 << 3,
    CAP_CAP_NOTIFY = 1 << 4,
    CAP_USERHOST_IN_NAMES = 1 << 5,
    CAP_SETNAME = 1 << 6,
    CAP_BATCH = 1 << 7,
    CAP_LABELED_RESPONSE = 1 << 8,
    CAP_CHATHISTORY = 1 << 9, /* draft/chathistory (irchistory.c): no replay on join */
    CAP_MULTI_PREFIX = 1 << 10, /* NAMES and WHO show every member mode (@+), not the highest */
    CAP_SEARCH = 1 << 11,       /* soju.im/search (irchistory.c): SEARCH is announced; it works without */
};
#define IRC_VARIANT_CAPS (CAP_SERVER_TIME | CAP_MESSAGE_TAGS | CAP_AWAY_NOTIFY | CAP_SETNAME)
#define IRC_REALNAME_MAX 100 /* bytes of a realname (USER, SETNAME), cut between characters */

enum irc_listing { LISTING_NONE, LISTING_NAMES, LISTING_WHO, LISTING_LIST };

#define IRC_USERLEN 10
/* Flood-control units of a listing: one per IRC_LINE_MAX bytes of reply, and one
 * per this many entries looked through (as the plain protocol's LINE_TOKEN_ENTRIES). */
#define IRC_TOKEN_ENTRIES 1000
#define IRC_LABEL_MAX 64 /* bytes of a label (labeled-response) we answer with */

struct irc_state {
    char nick[HUB_NAME_MAX];   /* asked for (before registration), "*" until then */
    char user[IRC_USERLEN + 2]; /* "~" and what USER gave, cleaned */
    char *realname;
    unsigned caps;
    uint8_t cap_negotiating;   /* CAP LS or REQ before registration: wait for CAP END */
    uint8_t cap_302;
    uint8_t got_user;
    uint8_t pass_ok;           /* PASS matched --irc-password (or none is set) */
    uint8_t invisible;         /* user mode +i */
    uint8_t listing;           /* enum irc_listing: what the next EV_WHO/EV_ROOMS answers */
    int64_t signon;            /* seconds since the epoch */
    int64_t last_spoke;        /* of the last PRIVMSG/NOTICE, for WHOIS idle */
    /* labeled-response: while a labeled command runs, its output is held here
     * (irc_out) and sent labeled when it is done (irc_label_done). */
    char label[IRC_LABEL_MAX + 1];
    struct msg **held;
    uint32_t nheld, capheld;
    uint32_t batches;          /* for batch reference names */
};

/* The codec's user_ops (ircencode.c): a hub user with them is an IRC user. */
extern const struct user_ops irc_user_ops;

static inline struct irc_state *irc_st(const struct conn *c) { return c->state; }

/* The IRC state of a hub user, or NULL for a user of another codec. */
struct irc_state *irc_state_of(const struct user *u);
/* The nick this connection is known by in numerics: its name, or "*". */
const char *irc_nick(const struct conn *c);
/* "user@host" of any hub user (IRC: "~ident@natter/irc"; others: "plain@natter/plain"). */
const char *irc_userhost(const struct user *u, char *out, size_t len);

/* Every msg for this connection goes through here: to conn_send, or held for
 * the labeled command running (labeled-response). */
void irc_out(struct conn *c, struct msg *m);
/* A labeled command starts (label unescaped, as the client sent it) or is done:
 * its output goes out tagged with the label, as one line, a batch, or an ACK. */
void irc_label_start(struct conn *c, const char *label);
void irc_label_done(struct conn *c);
/* Bytes queued for c, those held for a label included (for listing charges). */
size_t irc_queued(const struct conn *c);

/* One line to this connection ("\r\n" added; cut to 512 bytes at a character
 * boundary). */
void irc_send(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ":server NUM nick " then the rest. */
void irc_num(struct conn *c, const char *num, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* ERROR :text, then close once it is written (for a labeled command, as the
 * end of its answer). */
void irc_error_close(struct conn *c, const char *why, const char *text);

#endif
