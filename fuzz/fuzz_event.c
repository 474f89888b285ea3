/* libFuzzer target: the event decoder and validator (SPEC §5). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_event ev;
	struct pb_err err = PB_ERR_INIT;
	char rk[512], ex[128];

	if (pb_event_parse(data, size, &ev, &err) == 0) {
		/* a valid event must encode and parse back to itself */
		size_t len;
		char *json = pb_event_encode(&ev, &len);
		struct pb_event again;
		if (!json || pb_event_parse(json, len, &again, &err) != 0)
			abort();
		if (strcmp(again.id, ev.id) || strcmp(again.key, ev.key) || again.seq != ev.seq ||
		    again.value_len != ev.value_len || memcmp(again.value, ev.value, ev.value_len))
			abort();
		free(json);
		pb_event_routing_key(&ev, rk, sizeof(rk));
		pb_exchange_name(ev.federation, ex, sizeof(ex));
		if (pb_event_check_route(&ev, ex, rk, &err) != 0)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();	/* every rejection names its reason */
	}
	return 0;
}
