/* test_digest.c — lib/digest.c's own SHA-256 (FIPS 180-4): the NIST
 * example vectors, every length around the padding's block boundaries,
 * and random inputs checked against OpenSSL's SHA256 (linked by this
 * test only); base64 and random bytes. */
#include <check.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "suite_main.h"

static void hex_is(const char *msg, size_t n, const char *want)
{
	char hex[PB_SHA256_HEX_LEN + 1];

	pb_sha256_hex(msg, n, hex);
	ck_assert_str_eq(hex, want);
}

START_TEST(nist_vectors)
{
	char *a = malloc(1000000);

	hex_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	hex_is("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	       112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	ck_assert_ptr_nonnull(a);
	memset(a, 'a', 1000000);
	hex_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}
END_TEST

START_TEST(against_openssl)
{
	unsigned char buf[1000], mine[PB_SHA256_LEN], theirs[SHA256_DIGEST_LENGTH];

	srand(19);
	/* every length up to 300 (the padding's one- and two-block cases
	 * around 55, 56, 63, 64, 119, 120, 128 ...), then random ones */
	for (int round = 0; round < 1300; round++) {
		size_t n = round < 300 ? (size_t)round : (size_t)rand() % sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)rand();
		pb_sha256(buf, n, mine);
		SHA256(buf, n, theirs);
		ck_assert_msg(!memcmp(mine, theirs, PB_SHA256_LEN), "length %zu differs", n);
	}
}
END_TEST

START_TEST(base64_and_random)
{
	char out[16];
	unsigned char r[64] = { 0 }, zero[64] = { 0 };

	ck_assert_str_eq(pb_base64_encode("", 0, out), "");
	ck_assert_str_eq(pb_base64_encode("f", 1, out), "Zg==");
	ck_assert_str_eq(pb_base64_encode("fo", 2, out), "Zm8=");
	ck_assert_str_eq(pb_base64_encode("foo", 3, out), "Zm9v");
	ck_assert_str_eq(pb_base64_encode("foobar", 6, out), "Zm9vYmFy");
	ck_assert_uint_eq(pb_base64_len(6), 9);
	ck_assert_int_eq(pb_random_bytes(r, sizeof(r)), 0);
	ck_assert(memcmp(r, zero, sizeof(r)));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("digest");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, nist_vectors);
	tcase_add_test(tc, against_openssl);
	tcase_add_test(tc, base64_and_random);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
