/* digest.c — see digest.h. */
#include "digest.h"

#include <errno.h>
#include <openssl/sha.h>
#include <sys/random.h>

void pb_sha256(const void *p, size_t n, unsigned char out[PB_SHA256_LEN])
{
	SHA256(p, n, out);
}

void pb_sha256_hex(const void *p, size_t n, char hex[PB_SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[PB_SHA256_LEN];

	pb_sha256(p, n, md);
	for (size_t i = 0; i < PB_SHA256_LEN; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[PB_SHA256_HEX_LEN] = '\0';
}

int pb_random_bytes(void *buf, size_t n)
{
	unsigned char *b = buf;

	while (n > 0) {
		ssize_t got = getrandom(b, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += got;
		n -= (size_t)got;
	}
	return 0;
}

size_t pb_base64_len(size_t n)
{
	return (n + 2) / 3 * 4 + 1;
}

char *pb_base64_encode(const void *p, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	char *o = out;
	size_t i = 0;

	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = tab[v >> 6 & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}
