/* libFuzzer target: the service manifest parser and template expansion
 * (provbus-manifest(5)). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_file.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_err err = PB_ERR_INIT;
	char path[64];
	int fd = fuzz_file(data, size, path, sizeof(path));
	struct pb_manifest *m;

	if (fd < 0)
		return 0;
	m = pb_manifest_load(path, "fed", &err);
	if (m) {
		struct pb_config cfg;
		struct pb_kv *kv = NULL;
		size_t n = 0;
		memset(&cfg, 0, sizeof(cfg));
		cfg.node = "node-1";
		cfg.federation = "fed";
		cfg.region = "us-east-1";
		cfg.host = "10.0.0.1";
		if (pb_manifest_expand(m, &cfg, &kv, &n, &err) == 0)
			pb_kv_free_array(kv, n);
		else if (err.msg[0] == '\0')
			abort();
		pb_manifest_free(m);
	} else if (err.msg[0] == '\0') {
		abort();
	}
	close(fd);
	return 0;
}
