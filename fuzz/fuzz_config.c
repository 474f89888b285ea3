/* libFuzzer target: the node configuration parser (provbus.json(5)). */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_err err = PB_ERR_INIT;
	char path[64];
	int fd = fuzz_file(data, size, path, sizeof(path));
	struct pb_config *cfg;

	if (fd < 0)
		return 0;
	cfg = pb_config_load(path, &err);
	if (!cfg && err.msg[0] == '\0')
		abort();
	pb_config_free(cfg);
	close(fd);
	return 0;
}
