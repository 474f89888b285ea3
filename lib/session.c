/* session.c — one AMQP connection over rabbitmq-c 0.11 (see session.h).
 *
 * rabbitmq-c quirks handled here:
 * - amqp_parse_url() writes into its argument and points the result into
 *   it, and fills in "guest"/"guest" when the URL has no credentials; so
 *   whether the URL carries a password is decided from the text itself.
 * - connection.blocked and basic.cancel only come if the client
 *   properties advertise them in "capabilities".
 * - A failed connect leaves errno at EINPROGRESS (non-blocking connect):
 *   to say *why* (refused, unreachable) we probe once more ourselves.
 * - A channel the broker closed (404, 406, 403) must be answered with
 *   channel.close-ok before channel.open may reuse its number. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "log.h"
#include "pbtime.h"

#define URL_SHOW_MAX 512
#define FRAME_MAX 131072
#define CLOSE_TIMEOUT_MS 2000

struct pb_session {
	char **urls;
	size_t n_urls;
	char *password_file;
	char *password;			/* opts.password, or NULL */
	struct pb_tls tls;
	int has_tls;
	int heartbeat_s;
	char *vhost_override;
	char *connection_name;
	char *identity;
	int connect_timeout_ms;
	int frame_max;

	size_t next;			/* the URL to try first */
	size_t cur;			/* the connected URL */
	int warned_mode;		/* password file mode warning given */
	int close_ok_owed;		/* the broker's channel.close is unanswered */
	int tls_failed;			/* this round: a URL failed TLS verification */
	amqp_connection_state_t conn;	/* NULL when not connected */
	char url[URL_SHOW_MAX];		/* redacted, connected */
	char vhost[URL_SHOW_MAX];
	char user[256];			/* logged in as */
};

/* ---- URLs ---- */

/* The userinfo of url: [*start, *end) before the '@', or 0 if none. */
static int url_userinfo(const char *url, const char **start, const char **end)
{
	const char *p = strstr(url, "://"), *auth_end, *at = NULL;

	p = p ? p + 3 : url;
	auth_end = p + strcspn(p, "/?#");
	for (const char *q = p; q < auth_end; q++)
		if (*q == '@')
			at = q;
	if (!at)
		return 0;
	*start = p;
	*end = at;
	return 1;
}

int pb_url_has_password(const char *url)
{
	const char *s, *e;

	return url_userinfo(url, &s, &e) && memchr(s, ':', (size_t)(e - s)) != NULL;
}

int pb_url_has_user(const char *url)
{
	const char *s, *e;

	return url_userinfo(url, &s, &e) && e > s;
}

char *pb_url_take_arg(char *arg)
{
	const char *s, *e;
	char *copy = strdup(arg), *colon;

	if (copy && url_userinfo(arg, &s, &e) && (colon = memchr(s, ':', (size_t)(e - s))))
		memset(colon + 1, 'x', (size_t)(e - colon - 1));
	return copy;
}

void pb_session_redact_url(const char *url, char *out, size_t size)
{
	const char *s, *e, *colon;
	size_t n;

	if (!size)
		return;
	if (!url_userinfo(url, &s, &e) || !(colon = memchr(s, ':', (size_t)(e - s)))) {
		snprintf(out, size, "%s", url);
		return;
	}
	n = (size_t)(colon - url);
	snprintf(out, size, "%.*s%s", (int)(n < size ? n : size - 1), url, e);
}

/* ---- construction ---- */

static void wipe_free(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void pb_session_opts_from_config(struct pb_session_opts *o, const struct pb_config *cfg,
				 const char *connection_name)
{
	memset(o, 0, sizeof(*o));
	o->urls = (const char *const *)cfg->broker_urls;
	o->n_urls = cfg->n_broker_urls;
	o->password_file = cfg->password_file;
	o->tls = cfg->has_tls ? &cfg->tls : NULL;
	o->heartbeat_s = cfg->heartbeat_s;
	o->connection_name = connection_name;
	o->identity = cfg->node;
}

struct pb_session *pb_session_new(const struct pb_session_opts *opts)
{
	struct pb_session *s = calloc(1, sizeof(*s));
	int ok = s != NULL;

	if (!ok)
		goto out;
	s->urls = calloc(opts->n_urls ? opts->n_urls : 1, sizeof(char *));
	ok = s->urls != NULL;
	for (size_t i = 0; ok && i < opts->n_urls; i++) {
		s->urls[i] = strdup(opts->urls[i]);
		ok = s->urls[i] != NULL;
		s->n_urls += ok;
	}
	s->password_file = xstrdup(opts->password_file);
	s->password = xstrdup(opts->password);
	s->vhost_override = xstrdup(opts->vhost_override);
	s->identity = xstrdup(opts->identity);
	s->connection_name = xstrdup(opts->connection_name ? opts->connection_name : "provbus");
	ok = ok && (!opts->password_file || s->password_file) && (!opts->password || s->password) &&
	     (!opts->identity || s->identity) &&
	     (!opts->vhost_override || s->vhost_override) && s->connection_name;
	s->tls.verify_hostname = 1;
	if (ok && opts->tls) {
		s->has_tls = 1;
		s->tls.ca = xstrdup(opts->tls->ca);
		s->tls.cert = xstrdup(opts->tls->cert);
		s->tls.key = xstrdup(opts->tls->key);
		s->tls.verify_hostname = opts->tls->verify_hostname;
		ok = (!opts->tls->ca || s->tls.ca) && (!opts->tls->cert || s->tls.cert) &&
		     (!opts->tls->key || s->tls.key);
	}
	s->heartbeat_s = opts->heartbeat_s;
	s->frame_max = opts->frame_max >= 4096 ? opts->frame_max : FRAME_MAX;
	s->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	if (ok && s->vhost_override)
		snprintf(s->vhost, sizeof(s->vhost), "%s", s->vhost_override);
out:
	if (!ok) {
		pb_session_free(s);
		s = NULL;
	}
	return s;
}

void pb_session_free(struct pb_session *s)
{
	if (!s)
		return;
	pb_session_close(s);
	for (size_t i = 0; i < s->n_urls; i++)
		free(s->urls[i]);
	free(s->urls);
	free(s->password_file);
	wipe_free(s->password);
	free(s->vhost_override);
	free(s->connection_name);
	free(s->identity);
	free(s->tls.ca);
	free(s->tls.cert);
	free(s->tls.key);
	free(s);
}

/* ---- error translation ---- */

static int reply_code_ex(unsigned code)
{
	switch (code) {
	case 403:	/* ACCESS_REFUSED */
	case 530:	/* NOT_ALLOWED: vhost access */
		return EX_NOPERM;
	case 404:	/* NOT_FOUND */
	case 406:	/* PRECONDITION_FAILED */
		return EX_CONFIG;
	case 501: case 502: case 503: case 504: case 505: case 540:
		return EX_SOFTWARE;	/* a protocol error: ours */
	default:	/* 320 CONNECTION_FORCED, 405, 506, 541 ... */
		return EX_TEMPFAIL;
	}
}

static int status_ex(int status)
{
	switch (status) {
	case AMQP_STATUS_HEARTBEAT_TIMEOUT:
	case AMQP_STATUS_CONNECTION_CLOSED:
	case AMQP_STATUS_SOCKET_CLOSED:
	case AMQP_STATUS_TIMEOUT:
		return EX_TEMPFAIL;
	case AMQP_STATUS_SOCKET_ERROR:
	case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
	case AMQP_STATUS_TCP_ERROR:
	case AMQP_STATUS_SSL_ERROR:
	case AMQP_STATUS_SSL_CONNECTION_FAILED:
	case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
	case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
	case AMQP_STATUS_INCOMPATIBLE_AMQP_VERSION:
		return EX_UNAVAILABLE;
	case AMQP_STATUS_NO_MEMORY:
		return EX_OSERR;
	case AMQP_STATUS_BAD_URL:
		return EX_CONFIG;
	default:
		return EX_SOFTWARE;
	}
}

static const char *prefix_sep(const char *what)
{
	return what && *what ? ": " : "";
}

int pb_amqp_status_err(int status, const char *what, struct pb_err *err)
{
	if (status == AMQP_STATUS_OK)
		return 0;
	return pb_err_set(err, status_ex(status), "%s%s%s", what ? what : "", prefix_sep(what),
			  amqp_error_string2(status));
}

int pb_amqp_close_err(const amqp_method_t *m, const char *what, struct pb_err *err)
{
	const char *w = what ? what : "";
	unsigned code;
	amqp_bytes_t text;

	if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
		const amqp_connection_close_t *c = m->decoded;
		code = c->reply_code;
		text = c->reply_text;
	} else if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
		const amqp_channel_close_t *c = m->decoded;
		code = c->reply_code;
		text = c->reply_text;
	} else {
		return pb_err_set(err, EX_SOFTWARE, "%s%sunexpected method 0x%08x from the broker",
				  w, prefix_sep(what), (unsigned)m->id);
	}
	int ex = reply_code_ex(code);
	/* 530 is both "access to vhost refused" and "vhost not found"; the
	 * latter is a deployment (configuration) error */
	if (code == 530 && text.bytes && memmem(text.bytes, text.len, "not found", 9))
		ex = EX_CONFIG;
	return pb_err_set(err, ex, "%s%s%u %.*s", w, prefix_sep(what), code, (int)text.len,
			  text.bytes ? (const char *)text.bytes : "");
}

int pb_amqp_not_found(amqp_rpc_reply_t r)
{
	return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	       r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	       ((const amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND;
}

int pb_amqp_no_local_replica(amqp_rpc_reply_t r)
{
	const amqp_channel_close_t *c = r.reply.decoded;

	return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	       r.reply.id == AMQP_CHANNEL_CLOSE_METHOD && c->reply_code == 406 &&
	       memmem(c->reply_text.bytes, c->reply_text.len, "replica", 7) != NULL;
}

int pb_amqp_reply_err(amqp_rpc_reply_t r, const char *what, struct pb_err *err)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return 0;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		if (r.library_error == AMQP_STATUS_OK)	/* never seen, but do not return 0 */
			return pb_err_set(err, EX_SOFTWARE, "%s%sunknown library error",
					  what ? what : "", prefix_sep(what));
		return pb_amqp_status_err(r.library_error, what, err);
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		return pb_amqp_close_err(&r.reply, what, err);
	default:
		return pb_err_set(err, EX_SOFTWARE, "%s%sno reply from the library",
				  what ? what : "", prefix_sep(what));
	}
}

/* ---- password ---- */

/* Reads the first line of the password file into a new string. */
static char *read_password_file(struct pb_session *s, struct pb_err *err)
{
	const char *path = s->password_file;
	char *line = NULL;
	size_t cap = 0;
	struct stat st;
	ssize_t n;
	FILE *f = fopen(path, "r");

	if (!f) {
		pb_err_set(err, EX_CONFIG, "password file %s: %s: create it or fix broker.password_file",
			   path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		pb_err_set(err, EX_CONFIG, "password file %s is a directory: give broker.password_file the path of the file (DIR/NODE of provbus-schema export --credentials DIR)",
			   path);
		goto out;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) && !s->warned_mode) {
		pb_log_warn("password file %s is accessible by group or others (mode %03o): chmod 600 %s",
			    path, (unsigned)(st.st_mode & 0777), path);
		s->warned_mode = 1;
	}
	n = getline(&line, &cap, f);
	if (n < 0) {
		pb_err_set(err, EX_CONFIG, "password file %s is empty: write the password on its first line",
			   path);
		free(line);
		line = NULL;
		goto out;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0) {
		pb_err_set(err, EX_CONFIG, "password file %s: the first line is empty: write the password there",
			   path);
		free(line);
		line = NULL;
	}
out:
	if (f)
		fclose(f);
	return line;
}

/* ---- connecting ---- */

/* Why a TCP connect to host:port fails (rabbitmq-c only says "a socket
 * error occurred"): one more non-blocking connect, bounded by timeout. */
static void probe_connect(const char *host, int port, int timeout_ms, char *buf, size_t size)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
	char portstr[16];
	int fd = -1, e = 0;
	socklen_t len = sizeof(e);

	snprintf(buf, size, "socket error");
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
		goto out;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out;
	if (connect(fd, res->ai_addr, res->ai_addrlen) == 0)
		goto out;	/* it works now: keep "socket error" */
	if (errno != EINPROGRESS) {
		snprintf(buf, size, "%s", strerror(errno));
		goto out;
	}
	struct pollfd pfd = { fd, POLLOUT, 0 };
	if (poll(&pfd, 1, timeout_ms) == 0) {
		snprintf(buf, size, "connect timed out after %d ms", timeout_ms);
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e)
		snprintf(buf, size, "%s", strerror(e));
out:
	if (buf[0] >= 'A' && buf[0] <= 'Z')	/* "Connection refused": lowercase, as every message */
		buf[0] = (char)(buf[0] - 'A' + 'a');
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
}

int pb_sock_self_connected(int fd)
{
	struct sockaddr_storage me, peer;
	socklen_t ml = sizeof(me), pl = sizeof(peer);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&me, &ml) != 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &pl) != 0)
		return 0;
	return ml == pl && memcmp(&me, &peer, ml) == 0;
}

/* rabbitmq-c never loads OpenSSL's default trust store: without
 * broker.tls.ca, the system's bundle is given explicitly. */
static const char *system_ca_bundle(void)
{
	static const char *const paths[] = {
		"/etc/ssl/certs/ca-certificates.crt",	/* Debian, Ubuntu, Alpine */
		"/etc/pki/tls/certs/ca-bundle.crt",	/* RHEL, Fedora */
		"/etc/ssl/cert.pem",			/* BSDs, macOS */
	};
	const char *env = getenv("SSL_CERT_FILE");

	if (env && *env && access(env, R_OK) == 0)
		return env;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

static int tls_file_ok(const char *field, const char *path, struct pb_err *err)
{
	if (access(path, R_OK) == 0)
		return 0;
	return pb_err_set(err, EX_CONFIG, "broker.tls.%s %s: %s: fix the path in the configuration",
			  field, path, strerror(errno));
}

static amqp_socket_t *make_socket(struct pb_session *s, amqp_connection_state_t conn, int ssl,
				  struct pb_err *err)
{
	amqp_socket_t *sock = NULL;

	if (!ssl) {
		sock = amqp_tcp_socket_new(conn);
		if (!sock)
			pb_err_set(err, EX_OSERR, "cannot create a socket");
		return sock;
	}
	if (s->has_tls && s->tls.ca && tls_file_ok("ca", s->tls.ca, err))
		goto fail;
	if (s->has_tls && (s->tls.cert || s->tls.key)) {
		if (!s->tls.cert || !s->tls.key) {
			pb_err_set(err, EX_CONFIG, "broker.tls: cert and key go together: set both or neither");
			goto fail;
		}
		if (tls_file_ok("cert", s->tls.cert, err) || tls_file_ok("key", s->tls.key, err))
			goto fail;
	}
	const char *ca = s->has_tls && s->tls.ca ? s->tls.ca : system_ca_bundle();
	if (!ca) {
		pb_err_set(err, EX_CONFIG, "amqps URL: no CA to verify the broker with: set broker.tls.ca");
		goto fail;
	}
	sock = amqp_ssl_socket_new(conn);
	if (!sock) {
		pb_err_set(err, EX_SOFTWARE, "cannot create a TLS socket");
		goto fail;
	}
	if (amqp_ssl_socket_set_cacert(sock, ca) != AMQP_STATUS_OK) {
		pb_err_set(err, EX_CONFIG, "%s %s: not a readable PEM certificate",
			   ca == s->tls.ca ? "broker.tls.ca" : "the system CA bundle", ca);
		goto fail;
	}
	if (s->has_tls && s->tls.cert &&
	    amqp_ssl_socket_set_key(sock, s->tls.cert, s->tls.key) != AMQP_STATUS_OK) {
		pb_err_set(err, EX_CONFIG, "broker.tls.cert %s / key %s: cannot load the client certificate",
			   s->tls.cert, s->tls.key);
		goto fail;
	}
	amqp_ssl_socket_set_verify_peer(sock, 1);
	amqp_ssl_socket_set_verify_hostname(sock, s->has_tls ? s->tls.verify_hostname : 1);
	return sock;
fail:
	return NULL;	/* the socket belongs to conn: destroyed with it */
}

static void set_entry(amqp_table_entry_t *e, const char *key, amqp_field_value_kind_t kind)
{
	e->key = amqp_cstring_bytes(key);
	e->value.kind = kind;
}

/* Logs in with client properties: connection_name and the capabilities
 * without which RabbitMQ never sends connection.blocked or basic.cancel. */
static amqp_rpc_reply_t login(struct pb_session *s, amqp_connection_state_t conn,
			      const char *vhost, const char *user, const char *password,
			      int external)
{
	static const char *const caps[] = {
		"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "connection.blocked", "authentication_failure_close",
	};
	amqp_table_entry_t cap[sizeof(caps) / sizeof(caps[0])], prop[4];
	amqp_table_t props = { 4, prop };

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		set_entry(&cap[i], caps[i], AMQP_FIELD_KIND_BOOLEAN);
		cap[i].value.value.boolean = 1;
	}
	set_entry(&prop[0], "product", AMQP_FIELD_KIND_UTF8);
	prop[0].value.value.bytes = amqp_cstring_bytes("provbus");
	set_entry(&prop[1], "version", AMQP_FIELD_KIND_UTF8);
	prop[1].value.value.bytes = amqp_cstring_bytes(PB_VERSION);
	set_entry(&prop[2], "connection_name", AMQP_FIELD_KIND_UTF8);
	prop[2].value.value.bytes = amqp_cstring_bytes(s->connection_name);
	set_entry(&prop[3], "capabilities", AMQP_FIELD_KIND_TABLE);
	prop[3].value.value.table.num_entries = (int)(sizeof(cap) / sizeof(cap[0]));
	prop[3].value.value.table.entries = cap;
	if (external)	/* the broker reads the user from the certificate */
		return amqp_login_with_properties(conn, vhost, 0, s->frame_max, s->heartbeat_s, &props,
						  AMQP_SASL_METHOD_EXTERNAL, user);
	return amqp_login_with_properties(conn, vhost, 0, s->frame_max, s->heartbeat_s, &props,
					  AMQP_SASL_METHOD_PLAIN, user, password);
}

enum try_result { TRY_OK, TRY_NEXT, TRY_FATAL };

/* A TLS failure that waiting does not heal: the broker's certificate
 * cannot be verified with our CA or names another host. */
static int tls_setup_failure(int st)
{
	return st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED;
}

/* One attempt on URL i. TRY_NEXT: *why says what went wrong (the next URL
 * may work); TRY_FATAL: err is set (configuration, refused login). */
static enum try_result try_url(struct pb_session *s, size_t i, char *why, size_t why_size,
			       struct pb_err *err)
{
	const char *url = s->urls[i];
	struct amqp_connection_info ci;
	struct timeval tv = { s->connect_timeout_ms / 1000, (s->connect_timeout_ms % 1000) * 1000 };
	char shown[URL_SHOW_MAX], *copy = strdup(url), *password = NULL;
	amqp_connection_state_t conn = NULL;
	amqp_socket_t *sock;
	enum try_result res = TRY_FATAL;
	const char *vhost, *user;
	int st, external = 0;

	pb_session_redact_url(url, shown, sizeof(shown));
	if (!copy) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		pb_err_set(err, EX_CONFIG, "broker URL %s: not amqp[s]://USER@HOST[:PORT]/VHOST", shown);
		goto out;
	}
	if (!pb_url_has_password(url) && s->password) {
		if (!(password = strdup(s->password))) {
			pb_err_set(err, EX_OSERR, "out of memory");
			goto out;
		}
	} else if (!pb_url_has_password(url) && s->password_file) {
		if (!(password = read_password_file(s, err)))
			goto out;
	} else if (!pb_url_has_password(url) && ci.ssl && s->has_tls && s->tls.cert) {
		external = 1;	/* a client certificate and no password */
	} else if (!pb_url_has_password(url) && pb_url_has_user(url)) {
		pb_err_set(err, EX_CONFIG, "broker URL %s has no password: set broker.password_file (or broker.tls.cert with an amqps URL, to log in with a certificate)",
			   shown);
		goto out;
	}
	user = external && !pb_url_has_user(url) && s->identity ? s->identity : ci.user;
	vhost = s->vhost_override ? s->vhost_override : ci.vhost;
	conn = amqp_new_connection();
	if (!conn) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (!(sock = make_socket(s, conn, ci.ssl, err)))
		goto out;
	amqp_set_handshake_timeout(conn, &tv);
	pb_log_debug("connecting url=%s", shown);
	st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (st != AMQP_STATUS_OK) {
		res = TRY_NEXT;
		if (st == AMQP_STATUS_SOCKET_ERROR)
			probe_connect(ci.host, ci.port, s->connect_timeout_ms, why, why_size);
		else if (st == AMQP_STATUS_TIMEOUT)
			snprintf(why, why_size, "connect timed out after %d ms", s->connect_timeout_ms);
		else
			snprintf(why, why_size, "%s", amqp_error_string2(st));
		if (tls_setup_failure(st)) {
			size_t n = strlen(why);
			snprintf(why + n, why_size - n, "%s",
				 st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ?
				 " (the broker's certificate does not name this host: fix the URL's host or broker.tls.verify_hostname)" :
				 " (the broker's certificate is not signed by broker.tls.ca: fix broker.tls.ca)");
			s->tls_failed = 1;
		}
		goto out;
	}
	if (pb_sock_self_connected(amqp_get_sockfd(conn))) {
		/* nothing listens there: let the port go at once (a login
		 * would wait for the handshake timeout, holding the port the
		 * broker needs to come back on) */
		snprintf(why, why_size, "nothing listens on %s:%d (the connection reached itself)",
			 ci.host, ci.port);
		res = TRY_NEXT;
		goto out;
	}
	amqp_rpc_reply_t r = login(s, conn, vhost, user, password ? password : ci.password, external);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
		struct pb_err e = PB_ERR_INIT;
		pb_amqp_reply_err(r, "", &e);
		if (e.code == EX_NOPERM || e.code == EX_CONFIG) {
			/* a refused login or vhost, a missing vhost: the next URL
			 * (same cluster, same users) would say the same */
			int refused = r.reply.id == AMQP_CONNECTION_CLOSE_METHOD &&
				      ((amqp_connection_close_t *)r.reply.decoded)->reply_code == 403;
			*err = e;
			pb_err_prefix(err, "broker %s: login as %s%s to vhost %s refused", shown, user,
				      external ? " (SASL EXTERNAL, the client certificate)" : "", vhost);
			if (refused) {
				/* a wrong password or certificate does not heal by
				 * waiting (provbus-publish(1)): a configuration error */
				size_t n = strlen(err->msg);
				err->code = EX_CONFIG;
				snprintf(err->msg + n, sizeof(err->msg) - n, "%s",
					 external ? ": the broker must know user '" : s->password_file ?
					 ": check that broker.password_file holds this user's password (provbus-schema export --credentials DIR writes DIR/NODE) and that the definitions are imported" :
					 ": check the user and password");
				n = strlen(err->msg);
				if (external)
					snprintf(err->msg + n, sizeof(err->msg) - n,
						 "%s' named by the certificate's CN, and its listener must offer EXTERNAL (rabbitmq_auth_mechanism_ssl, ssl_options.verify = verify_peer)",
						 user);
			}
			goto out;
		}
		snprintf(why, why_size, "login: %s", e.msg);	/* 320 shutting down ... */
		res = TRY_NEXT;
		goto out;
	}
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		struct pb_err e = PB_ERR_INIT;
		pb_amqp_reply_err(r, "login", &e);
		snprintf(why, why_size, "%s", e.msg);
		if (ci.ssl && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_SSL_ERROR) {
			/* the TLS session was set up, then the broker ended it
			 * with an alert: with TLS 1.3 that is how it refuses a
			 * client certificate (missing, or not signed by its CA) */
			size_t n = strlen(why);
			snprintf(why + n, why_size - n, "%s",
				 " (the broker ended the TLS session: it wants a client certificate it trusts; check broker.tls.cert and key)");
			s->tls_failed = 1;
		}
		res = TRY_NEXT;
		goto out;
	}
	amqp_channel_open(conn, PB_CHANNEL);
	r = amqp_get_rpc_reply(conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		struct pb_err e = PB_ERR_INIT;
		pb_amqp_reply_err(r, "opening channel", &e);
		snprintf(why, why_size, "%s", e.msg);
		res = TRY_NEXT;
		goto out;
	}
	s->conn = conn;
	s->close_ok_owed = 0;
	conn = NULL;
	s->cur = i;
	s->next = i;
	snprintf(s->url, sizeof(s->url), "%s", shown);
	snprintf(s->vhost, sizeof(s->vhost), "%s", vhost);
	snprintf(s->user, sizeof(s->user), "%s", user);
	res = TRY_OK;
out:
	if (conn)
		amqp_destroy_connection(conn);
	wipe_free(password);
	if (copy) {
		explicit_bzero(copy, strlen(url));
		free(copy);
	}
	return res;
}

int pb_session_connect(struct pb_session *s, struct pb_err *err)
{
	char list[PB_ERR_MAX] = "", why[256], shown[URL_SHOW_MAX];
	size_t used = 0;
	int rc = -1;

	if (s->conn)
		return 0;
	if (!s->n_urls)
		return pb_err_set(err, EX_CONFIG, "no broker URL: set broker.urls");
	size_t start = s->next % s->n_urls;
	s->tls_failed = 0;
	for (size_t k = 0; k < s->n_urls; k++) {
		size_t i = (start + k) % s->n_urls;
		why[0] = '\0';
		switch (try_url(s, i, why, sizeof(why), err)) {
		case TRY_OK:
			pb_log_info("connected url=%s vhost=%s", s->url, s->vhost);
			rc = 0;
			goto out;
		case TRY_FATAL:
			s->next = (i + 1) % s->n_urls;
			goto out;
		case TRY_NEXT:
			s->next = (i + 1) % s->n_urls;
			pb_session_redact_url(s->urls[i], shown, sizeof(shown));
			pb_log_info("cannot connect url=%s error=\"%s\"", shown, why);
			if (used < sizeof(list)) {
				int n = snprintf(list + used, sizeof(list) - used, "%s%s: %s",
						 used ? "; " : "", shown, why);
				used += n > 0 ? (size_t)n : 0;
			}
			break;
		}
	}
	/* a certificate that cannot be verified does not heal by waiting
	 * (provbus-publish(1), EXIT STATUS): a configuration error, even if
	 * other URLs were down */
	pb_err_set(err, s->tls_failed ? EX_CONFIG : EX_UNAVAILABLE, "cannot connect to the broker: %s",
		   list);
out:
	return rc;
}

void pb_session_close(struct pb_session *s)
{
	struct timeval tv = { CLOSE_TIMEOUT_MS / 1000, 0 };

	if (!s || !s->conn)
		return;
	amqp_set_rpc_timeout(s->conn, &tv);
	amqp_rpc_reply_t r = amqp_channel_close(s->conn, PB_CHANNEL, AMQP_REPLY_SUCCESS);
	/* a library error means the socket is gone: nothing more to say */
	if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION)
		amqp_connection_close(s->conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(s->conn);
	s->conn = NULL;
	s->url[0] = '\0';
}

void pb_session_abort(struct pb_session *s)
{
	if (!s || !s->conn)
		return;
	amqp_destroy_connection(s->conn);
	s->conn = NULL;
	s->url[0] = '\0';
	/* round robin: the next connect starts after the URL that failed */
	if (s->n_urls)
		s->next = (s->cur + 1) % s->n_urls;
}

int pb_session_connected(const struct pb_session *s)
{
	return s && s->conn != NULL;
}

amqp_connection_state_t pb_session_conn(struct pb_session *s)
{
	return s->conn;
}

int pb_session_fd(struct pb_session *s)
{
	return s->conn ? amqp_get_sockfd(s->conn) : -1;
}

const char *pb_session_url(const struct pb_session *s)
{
	return s->conn ? s->url : "";
}

const char *pb_session_user(const struct pb_session *s)
{
	return s->conn ? s->user : "";
}

const char *pb_session_vhost(const struct pb_session *s)
{
	if (!s->vhost[0] && !s->vhost_override && s->n_urls) {
		/* not connected yet: what the first URL names */
		struct amqp_connection_info ci;
		char *copy = strdup(s->urls[0]);
		if (copy && amqp_parse_url(copy, &ci) == AMQP_STATUS_OK)
			snprintf(((struct pb_session *)s)->vhost, sizeof(s->vhost), "%s", ci.vhost);
		if (copy) {
			explicit_bzero(copy, strlen(s->urls[0]));
			free(copy);
		}
	}
	return s->vhost;
}

int pb_session_login_info(struct pb_session *s, char *host, size_t host_size, int *tls,
			  char **password, struct pb_err *err)
{
	const char *url;
	struct amqp_connection_info ci;
	char *copy;
	int rc = -1;

	*password = NULL;
	if (!s->conn)
		return pb_err_set(err, EX_SOFTWARE, "not connected");
	url = s->urls[s->cur];
	if (!(copy = strdup(url)))
		return pb_err_set(err, EX_OSERR, "out of memory");
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		pb_err_set(err, EX_CONFIG, "broker URL %s: not understood", s->url);
		goto out;
	}
	snprintf(host, host_size, "%s", ci.host);
	*tls = ci.ssl;
	if (pb_url_has_password(url))
		*password = strdup(ci.password);
	else if (s->password)
		*password = strdup(s->password);
	else if (s->password_file)
		*password = read_password_file(s, err);
	else if (pb_url_has_user(url) || !(ci.ssl && s->has_tls && s->tls.cert))
		*password = strdup(ci.password);	/* amqp://host/: guest */
	else {
		rc = 0;	/* SASL EXTERNAL */
		goto out;
	}
	if (!*password) {
		if (!err->code)
			pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(copy, strlen(url));
	free(copy);
	return rc;
}

void pb_session_wipe_free(char *p)
{
	wipe_free(p);
}

/* ---- channel and exchange ---- */

/* After the broker closed the connection (connection.close in r): answer
 * it and drop the connection. */
static void after_connection_close(struct pb_session *s)
{
	amqp_connection_close_ok_t ok = { 0 };

	amqp_send_method(s->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
	pb_session_abort(s);
}

/* After answering a channel.close that was still unread when we sent our
 * own channel.close: the broker (closing) answered ours with a close-ok
 * too; read it now so it does not surface later as a stray frame. */
static int drain_close_ok(struct pb_session *s, struct pb_err *err)
{
	int64_t deadline = pb_mono_ms() + CLOSE_TIMEOUT_MS;

	for (;;) {
		int64_t left = deadline - pb_mono_ms();
		struct timeval tv = { left > 0 ? left / 1000 : 0, left > 0 ? (left % 1000) * 1000 : 0 };
		amqp_frame_t f;
		int st;

		if (left <= 0)
			return pb_err_set(err, EX_TEMPFAIL, "reopening channel: no channel.close-ok from the broker");
		st = amqp_simple_wait_frame_noblock(s->conn, &f, &tv);
		if (st != AMQP_STATUS_OK)
			return pb_amqp_status_err(st, "reopening channel", err);
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;	/* content of the closed channel */
		if (f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
			pb_amqp_close_err(&f.payload.method, "reopening channel", err);
			after_connection_close(s);
			return -1;
		}
		if (f.channel == PB_CHANNEL && f.payload.method.id == AMQP_CHANNEL_CLOSE_OK_METHOD)
			return 0;
	}
}

static int send_close_ok(struct pb_session *s, struct pb_err *err)
{
	amqp_channel_close_ok_t ok = { 0 };

	s->close_ok_owed = 0;
	return pb_amqp_status_err(amqp_send_method(s->conn, PB_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
				  "reopening channel", err);
}

/* The broker may have closed channel 1 in three ways we can tell apart:
 * (1) it answered one of our RPCs with channel.close (the last RPC reply
 *     says so) or the caller handed us the frame (close_ok_owed): we owe
 *     it a close-ok;
 * (2) its channel.close is still unread: our own channel.close brings it
 *     back as the RPC's reply; we answer it and read the close-ok the
 *     broker sends for our close;
 * (3) the channel is open: our channel.close is answered by close-ok.
 * Sending a close-ok the broker does not expect, or channel.open on a
 * channel it still holds, is a connection error (504): hence the care. */
int pb_session_reopen_channel(struct pb_session *s, struct pb_err *err)
{
	amqp_rpc_reply_t r;
	int rc = -1;

	if (!s->conn)
		return pb_err_set(err, EX_TEMPFAIL, "reopening channel: not connected");
	r = amqp_get_rpc_reply(s->conn);
	if (s->close_ok_owed ||
	    (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)) {
		if (send_close_ok(s, err))
			goto out;
	} else {
		r = amqp_channel_close(s->conn, PB_CHANNEL, AMQP_REPLY_SUCCESS);
		if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			if (send_close_ok(s, err) || drain_close_ok(s, err))
				goto out;
		} else if (pb_amqp_reply_err(r, "reopening channel", err)) {
			if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
			    r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
				after_connection_close(s);
			goto out;
		}
	}
	amqp_channel_open(s->conn, PB_CHANNEL);
	r = amqp_get_rpc_reply(s->conn);
	if (pb_amqp_reply_err(r, "reopening channel", err)) {
		if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		    r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
			after_connection_close(s);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int pb_session_closed_by_broker(struct pb_session *s, const amqp_method_t *m, const char *what,
				struct pb_err *err)
{
	struct pb_err e2 = PB_ERR_INIT;

	pb_amqp_close_err(m, what, err);
	if (!s->conn)
		return -1;
	if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
		after_connection_close(s);
	} else if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
		s->close_ok_owed = 1;
		if (pb_session_reopen_channel(s, &e2))
			pb_log_warn("%s", e2.msg);
	}
	return -1;
}

int pb_session_check_exchange(struct pb_session *s, const char *exchange, struct pb_err *err)
{
	char what[300];
	amqp_rpc_reply_t r;
	int rc = -1;

	if (!s->conn)
		return pb_err_set(err, EX_TEMPFAIL, "checking exchange %s: not connected", exchange);
	snprintf(what, sizeof(what), "checking exchange %s", exchange);
	amqp_exchange_declare(s->conn, PB_CHANNEL, amqp_cstring_bytes(exchange),
			      amqp_cstring_bytes("topic"), 1, 0, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(s->conn);
	if (!pb_amqp_reply_err(r, what, err)) {
		rc = 0;
		goto out;
	}
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		struct pb_err e2 = PB_ERR_INIT;

		if (pb_amqp_not_found(r))
			pb_err_set(err, EX_CONFIG, "exchange %s not found: run provbus-schema apply", exchange);
		if (pb_session_reopen_channel(s, &e2))
			pb_log_warn("%s", e2.msg);
	} else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		   r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		after_connection_close(s);
	}
out:
	return rc;
}

/* ---- backoff ---- */

static int64_t draw(int64_t lo, int64_t hi)
{
	return lo + (int64_t)arc4random_uniform((uint32_t)(hi - lo + 1));
}

int64_t pb_backoff_next(struct pb_backoff *b)
{
	int64_t d;

	if (b->recovering && b->waited_ms >= PB_BACKOFF_RECOVER_MS)
		b->recovering = 0;	/* a long outage: the persistent schedule */
	b->cur_ms = b->cur_ms <= 0 ? PB_BACKOFF_MIN_MS : b->cur_ms * 2;
	if (b->recovering) {
		if (b->cur_ms > PB_BACKOFF_RECOVER_CAP_MS)
			b->cur_ms = PB_BACKOFF_RECOVER_CAP_MS;
		d = draw(0, b->cur_ms);
	} else {
		if (b->cur_ms > PB_BACKOFF_MAX_MS)
			b->cur_ms = PB_BACKOFF_MAX_MS;
		d = draw(b->cur_ms / 2, b->cur_ms);
	}
	b->waited_ms += d;
	return d;
}

void pb_backoff_connected(struct pb_backoff *b, int64_t now_ms)
{
	b->up_at = now_ms > 0 ? now_ms : 1;
}

int64_t pb_backoff_lost(struct pb_backoff *b, int64_t now_ms)
{
	if (b->up_at && now_ms - b->up_at >= PB_BACKOFF_HEALTHY_MS) {
		/* it had been healthy: a fast first retry, then 1.5 s at most */
		b->cur_ms = 0;
		b->recovering = 1;
		b->waited_ms = 0;
	}
	/* else it flapped (up for less than PB_BACKOFF_HEALTHY_MS): the
	 * schedule goes on where it was, so a broker that accepts and drops
	 * at once is not hammered */
	b->up_at = 0;
	return pb_backoff_next(b);
}

void pb_backoff_reset(struct pb_backoff *b)
{
	b->cur_ms = 0;
	b->recovering = 0;
	b->up_at = 0;
	b->waited_ms = 0;
}

/* ---- tables ---- */

amqp_table_entry_t pb_table_str(const char *key, const char *value)
{
	amqp_table_entry_t e;

	set_entry(&e, key, AMQP_FIELD_KIND_UTF8);
	e.value.value.bytes = amqp_cstring_bytes(value);
	return e;
}

amqp_table_entry_t pb_table_int(const char *key, int64_t value)
{
	amqp_table_entry_t e;

	set_entry(&e, key, AMQP_FIELD_KIND_I64);
	e.value.value.i64 = value;
	return e;
}

amqp_table_entry_t pb_table_bool(const char *key, int value)
{
	amqp_table_entry_t e;

	set_entry(&e, key, AMQP_FIELD_KIND_BOOLEAN);
	e.value.value.boolean = value != 0;
	return e;
}
