/* pbtest-provbench — the cost per event of the consumer's judging of one
 * key with many providers, for a profiler to count.
 *
 *   pbtest-provbench K M [--scan]
 *
 * Fills a provider set with K providers of one key (K nodes, one value
 * each, in one accepted region; applied without judging), then judges M more provides events the
 * way the daemon does (pb_providers_value_change, then
 * pb_providers_apply), each from one of the K nodes with a new value, in
 * the function run_events. --scan uses pb_providers_value_change_scan
 * (the O(k) scan) instead of the counting index. Prints
 *
 *   k K events M changed C
 *
 * Meant for `valgrind --tool=callgrind --toggle-collect=run_events`: the
 * instructions of run_events / M is the cost per event at K providers.
 * Exit 0, 64 usage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "providers.h"

static const char *const keys[] = { "API_URL" };
static const char *const regions[] = { "us-east-1" };
static const struct pb_filter filter = { "sg", keys, 1, regions, 1 };

static void make_event(struct pb_event *ev, int64_t seq, long node, long value)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->id, sizeof(ev->id), "00000000-0000-4000-8000-%012llu",
		 (unsigned long long)seq % 1000000000000ULL);
	ev->kind = PB_KIND_PROVIDES;
	snprintf(ev->federation, sizeof(ev->federation), "sg");
	snprintf(ev->region, sizeof(ev->region), "us-east-1");
	snprintf(ev->node, sizeof(ev->node), "web-%06ld", node);
	snprintf(ev->service, sizeof(ev->service), "api");
	snprintf(ev->key, sizeof(ev->key), "API_URL");
	snprintf(ev->value, sizeof(ev->value), "http://10.%ld.%ld.%ld:8080", value / 65536 % 256,
		 value / 256 % 256, value % 256);
	ev->value_len = strlen(ev->value);
	ev->has_value = 1;
	ev->public = 1;
	ev->seq = seq;
}

static int use_scan;

static int judge(struct pb_providers *p, const struct pb_event *ev)
{
	int delta, changed = 0;

	delta = use_scan ? pb_providers_value_change_scan(p, ev, &filter, 0, SIZE_MAX)
			 : pb_providers_value_change(p, ev, &filter, 0, SIZE_MAX);
	if (pb_providers_apply(p, ev, 0, &filter, 0, &changed) != PB_VERDICT_APPLIED)
		return -1;
	return changed && delta != 0;
}

/* not inlined: the profiler's toggle names it */
__attribute__((noinline)) long run_events(struct pb_providers *p, long k, long m, int64_t *seq);
__attribute__((noinline)) long run_events(struct pb_providers *p, long k, long m, int64_t *seq)
{
	struct pb_event ev;
	long i, n_changed = 0;

	for (i = 0; i < m; i++) {
		++*seq;
		make_event(&ev, *seq, (i * 7919) % k, k + i);
		n_changed += judge(p, &ev) > 0;
	}
	return n_changed;
}

int main(int argc, char **argv)
{
	struct pb_providers *p;
	struct pb_event ev;
	int64_t seq = 0;
	long k, m, i, changed;

	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--scan") != 0))
		goto usage;
	k = strtol(argv[1], NULL, 10);
	m = strtol(argv[2], NULL, 10);
	if (k < 1 || m < 0)
		goto usage;
	use_scan = argc == 4;
	if (!(p = pb_providers_new()))
		return 1;
	for (i = 0; i < k; i++) {	/* the fill: no judging, so --scan does not cost K^2 */
		int put;

		make_event(&ev, ++seq, i, i);
		pb_providers_apply(p, &ev, 0, &filter, 0, &put);
	}
	/* the counting index is built by the first question (O(n), once):
	 * asked here, so run_events counts the steady cost per event */
	make_event(&ev, seq + 1, 0, 0);
	if (!use_scan)
		pb_providers_value_change(p, &ev, &filter, 0, SIZE_MAX);
	changed = run_events(p, k, m, &seq);
	printf("k %ld events %ld changed %ld\n", k, m, changed);
	pb_providers_free(p);
	return 0;
usage:
	fprintf(stderr, "usage: pbtest-provbench K M [--scan]\n");
	return EX_USAGE;
}
