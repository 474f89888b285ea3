/* pbtest-replay-fuzz — replays saved inputs through the libFuzzer targets
 * of fuzz/ without libFuzzer (tests/integration/t-fuzz-regressions.sh).
 *
 *   pbtest-replay-fuzz TARGET FILE...      TARGET: event config manifest
 *                                          template envquote
 *
 * Each file is read whole into a buffer of exactly its size (so ASan in
 * `make SANITIZE=address,undefined` sees any over-read, as under the
 * fuzzer) and handed to that target's LLVMFuzzerTestOneInput. A target
 * that finds a broken property calls abort(): the program dies on that
 * signal, after printing the file's name on stderr first. Prints
 * "ok TARGET FILE" per file. Exit: 0 all passed, 64 usage, 66 a file
 * could not be read.
 *
 * The five targets each define LLVMFuzzerTestOneInput; each is included
 * here under its own name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define LLVMFuzzerTestOneInput replay_event
#include "../../fuzz/fuzz_event.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_config
#include "../../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_manifest
#include "../../fuzz/fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_template
#include "../../fuzz/fuzz_template.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput replay_envquote
#include "../../fuzz/fuzz_envquote.c"
#undef LLVMFuzzerTestOneInput

struct target {
	const char *name;
	int (*one)(const uint8_t *data, size_t size);
};

static const struct target targets[] = {
	{ "event", replay_event },
	{ "config", replay_config },
	{ "manifest", replay_manifest },
	{ "template", replay_template },
	{ "envquote", replay_envquote },
};

/* Reads path whole into a malloc'd buffer of exactly its size (1 byte for
 * an empty file, so the pointer is never NULL). Returns NULL on error. */
static uint8_t *read_whole(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *tmp;
	size_t cap = 0, len = 0, got;
	char chunk[65536];

	if (!f)
		return NULL;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + got > cap) {
			cap = (len + got) * 2;
			if (!(tmp = realloc(buf, cap)))
				goto fail;
			buf = tmp;
		}
		memcpy(buf + len, chunk, got);
		len += got;
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	/* exactly len bytes, so an over-read is out of bounds */
	tmp = malloc(len ? len : 1);
	if (!tmp) {
		free(buf);
		return NULL;
	}
	if (len)
		memcpy(tmp, buf, len);
	free(buf);
	*size = len;
	return tmp;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

int main(int argc, char **argv)
{
	const struct target *t = NULL;
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: pbtest-replay-fuzz event|config|manifest|template|envquote FILE...\n");
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (!strcmp(argv[1], targets[i].name))
			t = &targets[i];
	if (!t) {
		fprintf(stderr, "pbtest-replay-fuzz: unknown target '%s': want event, config, manifest, template or envquote\n",
			argv[1]);
		return EX_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		size_t size = 0;
		uint8_t *data = read_whole(argv[i], &size);

		if (!data) {
			fprintf(stderr, "pbtest-replay-fuzz: %s: cannot read it\n", argv[i]);
			rc = EX_NOINPUT;
			continue;
		}
		fprintf(stderr, "replaying %s %s (%zu bytes)\n", t->name, argv[i], size);
		t->one(data, size);
		free(data);
		printf("ok %s %s\n", t->name, argv[i]);
		fflush(stdout);
	}
	return rc;
}
