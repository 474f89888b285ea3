/* libFuzzer target: the event decoder and validator (docs/protocol.md §4).
 *
 * pb_event_parse reads a body with a fast scanner when it can and with
 * jansson otherwise (event-private.h); whatever the input, both must give
 * the same return, error code, message and event bytes as jansson alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event-private.h"
#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parse by the default path (fast scanner, else jansson) and by
 * jansson alone must agree in every byte. */
static void check_paths_agree(const uint8_t *data, size_t size)
{
	static struct pb_event by_auto, by_slow;
	struct pb_err auto_err = PB_ERR_INIT, slow_err = PB_ERR_INIT;
	int auto_rc, slow_rc;

	memset(&by_auto, 0x55, sizeof(by_auto));	/* the parser must clear it */
	memset(&by_slow, 0, sizeof(by_slow));
	auto_rc = pb_event_parse_path(data, size, &by_auto, &auto_err, PB_EVENT_PATH_AUTO);
	slow_rc = pb_event_parse_path(data, size, &by_slow, &slow_err, PB_EVENT_PATH_SLOW);
	if (auto_rc != slow_rc || auto_err.code != slow_err.code ||
	    strcmp(auto_err.msg, slow_err.msg) || memcmp(&by_auto, &by_slow, sizeof(by_auto)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_event ev;
	struct pb_err err = PB_ERR_INIT;
	char rk[512], ex[128];

	check_paths_agree(data, size);
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
		check_paths_agree((const uint8_t *)json, len);
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
