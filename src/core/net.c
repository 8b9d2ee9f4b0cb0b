/* net.c - socket helpers. They report into an error buffer and return -1; they
 * never print or exit (the caller knows whether an error is fatal). */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void set_err(char *err, const char *fmt, const char *a, const char *b, const char *why)
{
    if (err) {
        char what[160];
        snprintf(what, sizeof what, fmt, a, b);
        snprintf(err, NET_ERR_LEN, "%s: %s", what, why);
    }
}

int net_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl);
}

int net_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int net_set_keepalive(int fd, int idle_secs)
{
    int one = 1, cnt = 3, intvl = idle_secs / 3 > 0 ? idle_secs / 3 : 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_secs, sizeof idle_secs);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    return 0;
}

void net_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(out, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        /* Show IPv4-mapped peers of a dual-stack socket as plain IPv4. */
        if (strncmp(host, "::ffff:", 7) == 0 && strchr(host + 7, '.'))
            snprintf(out, len, "%s:%d", host + 7, port);
        else
            snprintf(out, len, "[%s]:%d", host, port);
    } else {
        snprintf(out, len, "unknown");
    }
}

int net_local_addr(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    net_format_addr((struct sockaddr *)&ss, out, len);
    return 0;
}

int net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int listen_on(const struct addrinfo *ai, int backlog)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* "::" should accept IPv4 too (dual stack), whatever the sysctl default. */
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int net_listen(const char *host, int port, int backlog, char *err)
{
    struct addrinfo hints = {0}, *res, *ai;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (host && !*host)
        host = NULL;
    /* With no host, prefer "::" (dual stack) and fall back to 0.0.0.0. */
    if (!host)
        hints.ai_family = AF_INET6;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 && !host) {
        hints.ai_family = AF_INET;
        rc = getaddrinfo(NULL, portstr, &hints, &res);
    }
    if (rc != 0) {
        set_err(err, "resolve %s%s", host ? host : "*", "", gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = listen_on(ai, backlog);
        saved = errno;
    }
    if (fd < 0 && !host) {
        struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        struct addrinfo v4 = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                              .ai_addr = (struct sockaddr *)&in4, .ai_addrlen = sizeof in4};
        fd = listen_on(&v4, backlog);
        if (fd < 0)
            saved = errno;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        /* "[::1]:8888", as the ready line writes addresses */
        set_err(err, host && strchr(host, ':') ? "listen [%s]:%s" : "listen %s:%s", host ? host : "*", portstr,
                strerror(saved));
        return -1;
    }
    return fd;
}

int net_resolve_passive(const char *host, char (*addrs)[NET_ADDR_LEN], int max, char *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        set_err(err, "resolve %s%s", host, "", gai_strerror(rc));
        return -1;
    }
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        char a[NET_ADDR_LEN];
        const void *p = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || !inet_ntop(ai->ai_family, p, a, sizeof a))
            continue;
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= strcmp(addrs[i], a) == 0;
        if (!dup)
            memcpy(addrs[n++], a, sizeof a);
    }
    freeaddrinfo(res);
    if (n == 0)
        set_err(err, "resolve %s%s", host, "", "no IPv4 or IPv6 address");
    return n ? n : -1;
}

int net_accept(int lfd, char *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd;
    do
        fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0 && addr)
        net_format_addr((struct sockaddr *)&ss, addr, NET_ADDR_LEN);
    return fd;
}

int net_connect(const char *host, const char *port, char *err)
{
    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        set_err(err, "resolve %s%s", host, "", gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_err(err, strchr(host, ':') ? "connect [%s]:%s" : "connect %s:%s", host, port, strerror(saved));
        return -1;
    }
    return fd;
}

int net_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    host[0] = '\0';
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= hostlen)
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        s = end + 2;
    } else if ((colon = strrchr(s, ':')) != NULL) {
        if (strchr(s, ':') != colon || (size_t)(colon - s) >= hostlen)
            return -1; /* bare IPv6 needs brackets */
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        s = colon + 1;
    }
    if (!*s || strlen(s) >= portlen || strspn(s, "0123456789") != strlen(s))
        return -1;
    strcpy(port, s);
    return 0;
}
