/* test_rstream.c — the stream protocol decoders of provbus-fleet
 * (fleet/rstream.h) on crafted frames: a Deliver frame as RabbitMQ 3.10
 * sends it (an Osiris chunk of AMQP 1.0 messages written by
 * rabbit_msg_record for an AMQP 0-9-1 publish) decodes to the fields the
 * AMQP 0-9-1 reader hands on; every malformed length is an error naming
 * what and where, and no prefix of a good frame is read past its end
 * (run it under ASan: make SANITIZE=address,undefined). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../fleet/rstream.h"
#include "suite_main.h"

struct buf {
	uint8_t b[8192];
	size_t n;
};

static void put(struct buf *w, const void *p, size_t n)
{
	ck_assert_uint_le(w->n + n, sizeof(w->b));
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void u8(struct buf *w, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(w, &b, 1);
}

static void u16(struct buf *w, unsigned v)
{
	u8(w, v >> 8);
	u8(w, v);
}

static void u32(struct buf *w, uint32_t v)
{
	u16(w, v >> 16);
	u16(w, v & 0xffff);
}

static void u64(struct buf *w, uint64_t v)
{
	u32(w, (uint32_t)(v >> 32));
	u32(w, (uint32_t)v);
}

static void set32(struct buf *w, size_t at, uint32_t v)
{
	w->b[at] = (uint8_t)(v >> 24);
	w->b[at + 1] = (uint8_t)(v >> 16);
	w->b[at + 2] = (uint8_t)(v >> 8);
	w->b[at + 3] = (uint8_t)v;
}

static void sym8(struct buf *w, const char *s)
{
	u8(w, 0xa3);
	u8(w, (unsigned)strlen(s));
	put(w, s, strlen(s));
}

static void str8(struct buf *w, const char *s)
{
	u8(w, 0xa1);
	u8(w, (unsigned)strlen(s));
	put(w, s, strlen(s));
}

/* An AMQP 1.0 message as rabbit_msg_record writes one for an AMQP 0-9-1
 * publish to exchange ex with key rk, user_id user (NULL: none), body. */
static void message(struct buf *m, const char *ex, const char *rk, const char *user,
		    const char *body)
{
	struct buf map = { .n = 0 }, list = { .n = 0 };
	size_t bl = strlen(body);

	/* message-annotations: a map8 of symbol keys */
	sym8(&map, "x-routing-key");
	str8(&map, rk);
	sym8(&map, "x-exchange");
	str8(&map, ex);
	sym8(&map, "x-basic-delivery-mode");
	u8(&map, 0x50);
	u8(&map, 2);
	u8(m, 0x00);
	u8(m, 0x53);
	u8(m, 0x72);
	u8(m, 0xc1);
	u8(m, (unsigned)map.n + 1);
	u8(m, 6);
	put(m, map.b, map.n);
	/* properties: message-id null, user-id, 7 nulls, creation-time */
	u8(&list, 0x40);
	if (user) {
		u8(&list, 0xa0);
		u8(&list, (unsigned)strlen(user));
		put(&list, user, strlen(user));
	} else {
		u8(&list, 0x40);
	}
	for (int i = 0; i < 7; i++)
		u8(&list, 0x40);
	u8(&list, 0x83);
	u64(&list, 1765000000000ull);
	u8(m, 0x00);
	u8(m, 0x53);
	u8(m, 0x73);
	u8(m, 0xc0);
	u8(m, (unsigned)list.n + 1);
	u8(m, 10);
	put(m, list.b, list.n);
	/* application-properties: an empty map */
	u8(m, 0x00);
	u8(m, 0x53);
	u8(m, 0x74);
	u8(m, 0xc1);
	u8(m, 1);
	u8(m, 0);
	/* data: vbin32 */
	u8(m, 0x00);
	u8(m, 0x53);
	u8(m, 0x75);
	u8(m, 0xb0);
	u32(m, (uint32_t)bl);
	put(m, body, bl);
}

/* A Deliver frame's content (no size) for subscription 3: a chunk from
 * offset first holding the entries data (n_entries, n_records). */
static void deliver(struct buf *f, uint64_t first, unsigned n_entries, uint32_t n_records,
		    const struct buf *data)
{
	f->n = 0;
	u16(f, 0x0008);
	u16(f, 1);
	u8(f, 3);
	u8(f, 0x50);	/* magic 5, version 0 */
	u8(f, 0);	/* user chunk */
	u16(f, n_entries);
	u32(f, n_records);
	u64(f, 1765000000123ull);	/* timestamp */
	u64(f, 1);	/* epoch */
	u64(f, first);
	u32(f, 0);	/* crc */
	u32(f, (uint32_t)data->n);
	u32(f, 0);	/* trailer */
	u32(f, 0);
	put(f, data->b, data->n);
}

static void simple_entry(struct buf *d, const struct buf *m)
{
	u32(d, (uint32_t)m->n);
	put(d, m->b, m->n);
}

struct seen {
	int n;
	int64_t off[8];
	struct rs_amqp10 msg[8];
	char why[200];
	int bad;
};

static int collect(int64_t off, const uint8_t *data, size_t len, void *vs)
{
	struct seen *s = vs;

	ck_assert_int_lt(s->n, 8);
	s->off[s->n] = off;
	if (rs_amqp10_decode(data, len, &s->msg[s->n], s->why, sizeof(s->why)) < 0)
		s->bad++;
	s->n++;
	return 0;
}

static int eq(const uint8_t *p, size_t n, const char *s)
{
	return p && n == strlen(s) && !memcmp(p, s, n);
}

START_TEST(two_messages)
{
	struct buf m1 = { .n = 0 }, m2 = { .n = 0 }, d = { .n = 0 }, f;
	struct rs_chunk c;
	struct seen s = { 0 };
	uint8_t sub;
	char why[200];

	message(&m1, "provbus.fx", "us-east-1.provides.API_URL", "n1", "{\"a\":1}");
	message(&m2, "provbus.fx", "us-east-1.presence.c1", NULL, "{}");
	simple_entry(&d, &m1);
	simple_entry(&d, &m2);
	deliver(&f, 4000, 2, 2, &d);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), 0);
	ck_assert_uint_eq(sub, 3);
	ck_assert_int_eq(c.first_offset, 4000);
	ck_assert_int_eq(c.timestamp_ms, 1765000000123ll);
	ck_assert_int_eq(rs_chunk_records(&c, collect, &s, why, sizeof(why)), 0);
	ck_assert_int_eq(s.n, 2);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_int_eq(s.off[0], 4000);
	ck_assert_int_eq(s.off[1], 4001);
	ck_assert(eq(s.msg[0].exchange, s.msg[0].exchange_len, "provbus.fx"));
	ck_assert(eq(s.msg[0].routing_key, s.msg[0].routing_key_len, "us-east-1.provides.API_URL"));
	ck_assert(eq(s.msg[0].user_id, s.msg[0].user_id_len, "n1"));
	ck_assert(eq(s.msg[0].body, s.msg[0].body_len, "{\"a\":1}"));
	ck_assert_int_eq(s.msg[0].creation_ms, 1765000000000ll);
	ck_assert_ptr_null(s.msg[1].user_id);
	ck_assert(eq(s.msg[1].body, s.msg[1].body_len, "{}"));
}
END_TEST

/* an uncompressed sub-batch of 3 records between two simple entries */
START_TEST(sub_batch)
{
	struct buf m = { .n = 0 }, d = { .n = 0 }, sb = { .n = 0 }, f;
	struct rs_chunk c;
	struct seen s = { 0 };
	uint8_t sub;
	char why[200];

	message(&m, "provbus.fx", "rk", "n1", "{}");
	simple_entry(&d, &m);
	for (int i = 0; i < 3; i++)
		simple_entry(&sb, &m);
	u8(&d, 0x80);	/* sub-batch, no compression */
	u16(&d, 3);
	u32(&d, (uint32_t)sb.n);
	u32(&d, (uint32_t)sb.n);
	put(&d, sb.b, sb.n);
	simple_entry(&d, &m);
	deliver(&f, 10, 3, 5, &d);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(rs_chunk_records(&c, collect, &s, why, sizeof(why)), 0);
	ck_assert_int_eq(s.n, 5);
	ck_assert_int_eq(s.bad, 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(s.off[i], 10 + i);
}
END_TEST

START_TEST(compressed_sub_batch)
{
	struct buf d = { .n = 0 }, f;
	struct rs_chunk c;
	struct seen s = { 0 };
	uint8_t sub;
	char why[200] = "";

	u8(&d, 0x80 | (1 << 4));	/* gzip */
	u16(&d, 2);
	u32(&d, 100);
	u32(&d, 4);
	u32(&d, 0);
	deliver(&f, 0, 1, 2, &d);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(rs_chunk_records(&c, collect, &s, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "compressed with codec 1"));
	ck_assert_int_eq(s.n, 0);
}
END_TEST

/* malformed chunks: what goes wrong, and the words that must say so */
START_TEST(malformed_chunks)
{
	struct buf m = { .n = 0 }, d = { .n = 0 }, f;
	struct rs_chunk c;
	uint8_t sub;
	char why[200];

	message(&m, "provbus.fx", "rk", "n1", "{}");
	simple_entry(&d, &m);

	/* data length beyond the frame */
	deliver(&f, 0, 1, 1, &d);
	set32(&f, 5 + 36, (uint32_t)d.n + 1);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "data length"));

	/* not an Osiris chunk */
	deliver(&f, 0, 1, 1, &d);
	f.b[5] = 0x40;
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "magic"));

	/* not a Deliver */
	deliver(&f, 0, 1, 1, &d);
	f.b[1] = 0x07;
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "not a Deliver"));

	/* an entry larger than the data */
	deliver(&f, 0, 1, 1, &d);
	set32(&f, 5 + 48, (uint32_t)m.n + 1);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(rs_chunk_records(&c, collect, &(struct seen){ 0 }, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "entry of"));

	/* the header counts more entries, or more records, than the data holds */
	deliver(&f, 0, 2, 2, &d);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(rs_chunk_records(&c, collect, &(struct seen){ 0 }, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "entry 2 of 2 truncated"));
	deliver(&f, 0, 1, 2, &d);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(rs_chunk_records(&c, collect, &(struct seen){ 0 }, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "missing"));

	/* fewer records than entries */
	deliver(&f, 0, 1, 0, &d);
	ck_assert_int_eq(rs_deliver_decode(f.b, f.n, &sub, &c, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "0 records in 1 entries"));
}
END_TEST

/* malformed messages: a table of (bytes, words of the error) */
START_TEST(malformed_messages)
{
	static const struct {
		const char *name;
		uint8_t b[24];
		size_t n;
		const char *words;
	} t[] = {
		{ "not described", { 0x53, 0x75 }, 2, "not a described section" },
		{ "data truncated", { 0x00, 0x53, 0x75, 0xa0, 5, 'a', 'b' }, 7, "5 bytes, 2 left" },
		{ "vbin32 size truncated", { 0x00, 0x53, 0x75, 0xb0, 0, 0 }, 6, "size truncated" },
		{ "data not binary", { 0x00, 0x53, 0x75, 0xa1, 1, 'x' }, 6, "not binary" },
		{ "no data", { 0x00, 0x53, 0x74, 0xc1, 1, 0 }, 6, "no data section" },
		{ "map larger than held", { 0x00, 0x53, 0x72, 0xc1, 9, 2, 0xa3 }, 7, "9 bytes" },
		{ "map entry past its map", { 0x00, 0x53, 0x72, 0xc1, 3, 2, 0xa3, 5 }, 8,
		  "5 bytes, 0 left" },
		{ "unknown constructor", { 0x00, 0x53, 0x73, 0xc0, 2, 1, 0x31 }, 7,
		  "unknown constructor 0x31" },
		{ "annotations not a map", { 0x00, 0x53, 0x72, 0x50, 1 }, 5, "not a list or map" },
		{ "descriptor truncated", { 0x00, 0x80, 0, 0 }, 4, "8 bytes, 2 left" },
		{ "section value missing", { 0x00, 0x53, 0x75 }, 3, "truncated" },
		{ "list count truncated", { 0x00, 0x53, 0x73, 0xd0, 0, 0, 0, 2, 0, 0 }, 10,
		  "count truncated" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct rs_amqp10 m;
		char why[200] = "";
		int rc = rs_amqp10_decode(t[i].b, t[i].n, &m, why, sizeof(why));

		ck_assert_msg(rc == -1, "%s: accepted", t[i].name);
		ck_assert_msg(strstr(why, t[i].words), "%s: \"%s\" does not say \"%s\"", t[i].name,
			      why, t[i].words);
	}
}
END_TEST

/* every prefix of a good frame, and every byte of it flipped: an error or
 * a decode within its bounds (ASan watches), never a crash */
START_TEST(every_prefix_and_flip)
{
	struct buf m1 = { .n = 0 }, d = { .n = 0 }, f;
	char why[200];

	message(&m1, "provbus.fx", "us-east-1.provides.API_URL", "n1", "{\"a\":1}");
	simple_entry(&d, &m1);
	simple_entry(&d, &m1);
	deliver(&f, 7, 2, 2, &d);
	for (size_t n = 0; n <= f.n; n++) {
		uint8_t *copy = malloc(n ? n : 1), sub;
		struct rs_chunk c;
		struct seen s = { 0 };

		memcpy(copy, f.b, n);
		if (rs_deliver_decode(copy, n, &sub, &c, why, sizeof(why)) == 0)
			(void)rs_chunk_records(&c, collect, &s, why, sizeof(why));
		ck_assert_msg(n == f.n || s.n < 2 || s.bad, "prefix %zu decoded whole", n);
		free(copy);
	}
	for (size_t i = 0; i < f.n; i++) {
		uint8_t *copy = malloc(f.n), sub;
		struct rs_chunk c;
		struct seen s = { 0 };

		memcpy(copy, f.b, f.n);
		copy[i] ^= 0xff;
		if (rs_deliver_decode(copy, f.n, &sub, &c, why, sizeof(why)) == 0)
			(void)rs_chunk_records(&c, collect, &s, why, sizeof(why));
		free(copy);
	}
}
END_TEST

static Suite *rstream_suite(void)
{
	Suite *s = suite_create("rstream");
	TCase *tc = tcase_create("decode");

	tcase_add_test(tc, two_messages);
	tcase_add_test(tc, sub_batch);
	tcase_add_test(tc, compressed_sub_batch);
	tcase_add_test(tc, malformed_chunks);
	tcase_add_test(tc, malformed_messages);
	tcase_add_test(tc, every_prefix_and_flip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(rstream_suite());
}
