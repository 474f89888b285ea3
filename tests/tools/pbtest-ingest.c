/* pbtest-ingest — the ingest baseline of make bench: the least a
 * rabbitmq-c consumer can do with a message, which is acknowledge it.
 *
 *   pbtest-ingest URL QUEUE --count N [--prefetch P] [--ack-every K]
 *                 [--timeout-ms T] [--stream-first]
 *
 * Connects, sets basic.qos prefetch P (default 500, the daemon's
 * CS_PREFETCH), consumes QUEUE with manual acks, and acks every message
 * (one basic.ack each, the way a minimal consumer is written; --ack-every
 * K acks with `multiple` every K messages instead). Stops after N
 * messages (--stream-first: QUEUE is a stream, read from its first
 * offset), or after T ms (default 120000) without a message. Prints
 *
 *   consumed N ms MS rate R
 *
 * (MS from the connection's start to the last ack written). Exit 0 when N
 * came, 1 otherwise (broker error, timeout), 64 usage, 69 unreachable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#define CH 1

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int reply_ok(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		fprintf(stderr, "pbtest-ingest: %s: %s\n", what, amqp_error_string2(r.library_error));
	else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		 r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *c = r.reply.decoded;
		fprintf(stderr, "pbtest-ingest: %s: %u %.*s\n", what, c->reply_code,
			(int)c->reply_text.len, (char *)c->reply_text.bytes);
	} else {
		fprintf(stderr, "pbtest-ingest: %s: broker error\n", what);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: pbtest-ingest URL QUEUE --count N [--prefetch P] "
		"[--ack-every K] [--timeout-ms T] [--stream-first]\n");
	exit(EX_USAGE);
}

int main(int argc, char **argv)
{
	const char *url, *queue;
	long count = -1, prefetch = 500, ack_every = 1, timeout_ms = 120000, got = 0;
	int stream_first = 0;
	amqp_table_entry_t first;
	struct amqp_connection_info ci;
	amqp_connection_state_t conn = NULL;
	amqp_socket_t *sock;
	char *copy = NULL;
	int rc = 1, st;
	int64_t t0, t1;
	uint64_t last_tag = 0;

	if (argc < 3)
		usage();
	url = argv[1];
	queue = argv[2];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--stream-first")) {
			stream_first = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--count"))
			count = atol(argv[++i]);
		else if (!strcmp(argv[i], "--prefetch"))
			prefetch = atol(argv[++i]);
		else if (!strcmp(argv[i], "--ack-every"))
			ack_every = atol(argv[++i]);
		else if (!strcmp(argv[i], "--timeout-ms"))
			timeout_ms = atol(argv[++i]);
		else
			usage();
	}
	if (count <= 0 || prefetch <= 0 || prefetch > 65535 || ack_every <= 0)
		usage();

	t0 = mono_us();
	copy = strdup(url);
	amqp_default_connection_info(&ci);
	if (!copy || amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		fprintf(stderr, "pbtest-ingest: bad URL (amqp://USER:PASS@HOST:PORT/VHOST)\n");
		rc = EX_USAGE;
		goto out;
	}
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (!sock || (st = amqp_socket_open(sock, ci.host, ci.port)) != AMQP_STATUS_OK) {
		fprintf(stderr, "pbtest-ingest: %s:%d: cannot connect\n", ci.host, ci.port);
		rc = EX_UNAVAILABLE;
		goto out;
	}
	if (!reply_ok(amqp_login(conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user,
				 ci.password), "login"))
		goto out;
	amqp_channel_open(conn, CH);
	if (!reply_ok(amqp_get_rpc_reply(conn), "opening channel"))
		goto out;
	amqp_basic_qos(conn, CH, 0, (uint16_t)prefetch, 0);
	if (!reply_ok(amqp_get_rpc_reply(conn), "basic.qos"))
		goto out;
	first.key = amqp_cstring_bytes("x-stream-offset");
	first.value.kind = AMQP_FIELD_KIND_UTF8;
	first.value.value.bytes = amqp_cstring_bytes("first");
	amqp_basic_consume(conn, CH, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
			   stream_first ? (amqp_table_t){ 1, &first } : amqp_empty_table);
	if (!reply_ok(amqp_get_rpc_reply(conn), "consuming the queue"))
		goto out;

	while (got < count) {
		amqp_envelope_t env;
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		amqp_rpc_reply_t r;

		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT) {
			fprintf(stderr, "pbtest-ingest: %s: only %ld of %ld messages in %ld ms\n",
				queue, got, count, timeout_ms);
			goto out;
		}
		if (!reply_ok(r, "consuming"))
			goto out;
		got++;
		last_tag = env.delivery_tag;
		amqp_destroy_envelope(&env);
		if (got % ack_every == 0 || got == count) {
			if (amqp_basic_ack(conn, CH, last_tag, ack_every > 1) != AMQP_STATUS_OK) {
				fprintf(stderr, "pbtest-ingest: cannot ack\n");
				goto out;
			}
		}
	}
	t1 = mono_us();
	printf("consumed %ld ms %.1f rate %.0f\n", got, (double)(t1 - t0) / 1000.0,
	       (double)got * 1e6 / (double)(t1 - t0 > 0 ? t1 - t0 : 1));
	rc = 0;
out:
	if (conn) {
		amqp_channel_close(conn, CH, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
	}
	free(copy);
	return rc;
}
