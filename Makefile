# provbus — see README.md. Knobs: CC CFLAGS LDFLAGS PREFIX DESTDIR SYSCONFDIR
# V=1 (echo commands), SANITIZE=address,undefined, DEVELOPER=1 (-Werror).
# BUILD: the objects' folder (build; build-san with SANITIZE). PROGDIR: where
# the programs are linked: bin for the plain build, $(BUILD)/bin for any
# other (a sanitizer build never overwrites the plain programs); check,
# demo, bench and reliability run the programs of PROGDIR.
CC ?= cc
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
CFLAGS ?= -O2 -g
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

PKGS := librabbitmq jansson uuid sqlite3
PB_CFLAGS := -std=gnu11 -Wall -Wextra -Wno-missing-field-initializers \
	-D_GNU_SOURCE -DPB_VERSION='"$(VERSION)"' -Ilib -MMD -MP
PB_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS)) -lm
# a program loads only the libraries it calls (only provbus-audit needs
# libm): each one loaded costs a process start its mapping and relocations
# (an idle daemon's memory did not change measurably without libm)
PB_LDFLAGS += -Wl,--as-needed
PB_CFLAGS += $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)

ifdef SANITIZE
PB_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
PB_LDFLAGS += -fsanitize=$(SANITIZE)
BUILD ?= build-san
endif
BUILD ?= build
ifeq ($(BUILD),build)
PROGDIR ?= bin
else
PROGDIR ?= $(BUILD)/bin
endif
ifdef DEVELOPER
PB_CFLAGS += -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla -Wundef
endif

ifneq ($(V),1)
Q = @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

LIB_SRC := $(sort $(wildcard lib/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A := $(BUILD)/libprovbus.a

# program name -> source folder
PROG_DIRS := schema:broker-schema publish:publisher consumer:consumer audit:audit fleet:fleet
PROGRAMS := $(foreach p,$(PROG_DIRS),$(PROGDIR)/provbus-$(word 1,$(subst :, ,$(p))))

TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

# deploy/install-deps.sh by group: building needs the compiler and the
# -dev libraries only; check, demo, bench, fuzz and deb install (as root)
# or name (otherwise) what they need, when they need it
DEPS_OK := $(BUILD)/.deps-build-ok
deps_ok = $(BUILD)/.deps-$(1)-ok
DEPS_GROUPS := build check demo bench fuzz deb partition

.PHONY: all check unit integration clean install uninstall deps demo bench bench-quick \
	reliability fuzz valgrind-check mutation deb print-programs coverage-core
all: $(PROGRAMS)

$(foreach g,$(DEPS_GROUPS),$(call deps_ok,$(g))): $(BUILD)/.deps-%-ok: deploy/install-deps.sh
	$(Q)deploy/install-deps.sh --check-or-install --$*
	$(Q)mkdir -p $(@D) && touch $@
deps:
	deploy/install-deps.sh
# the installed names of the programs, one a line (tests, packaging)
print-programs:
	@printf '%s\n' $(notdir $(PROGRAMS))

$(BUILD)/%.o: %.c | $(DEPS_OK)
	$(call say,CC,$<)mkdir -p $(@D) && $(CC) $(PB_CFLAGS) $(CFLAGS) $(CPPFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	$(call say,AR,$@)rm -f $@.$$$$ && ar rcs $@.$$$$ $^ && mv -f $@.$$$$ $@

# linked under a temporary name, then renamed: a program running from
# PROGDIR (a test, the bench's snapshot) never sees a half-written file
define prog_rule
$$(PROGDIR)/provbus-$(1): $$(patsubst %.c,$$(BUILD)/%.o,$$(sort $$(wildcard $(2)/*.c))) $$(LIB_A)
	$$(call say,LINK,$$@)mkdir -p $$(@D) && $$(CC) $$(PB_LDFLAGS) $$(LDFLAGS) -o $$@.$$$$$$$$ $$^ $$(PB_LIBS) \
		&& mv -f $$@.$$$$$$$$ $$@
endef
$(foreach p,$(PROG_DIRS),$(eval $(call prog_rule,$(word 1,$(subst :, ,$(p))),$(word 2,$(subst :, ,$(p))))))

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_A)
	$(call say,LINK,$@)$(CC) $(PB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs check) $(PB_LIBS)
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIB_A)
	$(call say,LINK,$@)mkdir -p $(@D) && $(CC) $(PB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PB_LIBS)

# provbus-fleet's cache, with the model it prunes (tests/unit/test_fleetcache.c)
$(BUILD)/tests/test_fleetcache: $(BUILD)/tests/unit/test_fleetcache.o $(BUILD)/fleet/cache.o \
		$(BUILD)/fleet/model.o $(LIB_A)
	$(call say,LINK,$@)$(CC) $(PB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs check) $(PB_LIBS)
# provbus-fleet's stream protocol decoders (tests/unit/test_rstream.c)
$(BUILD)/tests/test_rstream: $(BUILD)/tests/unit/test_rstream.o $(BUILD)/fleet/rstream.o $(LIB_A)
	$(call say,LINK,$@)$(CC) $(PB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs check) $(PB_LIBS)
# lib/digest.c's SHA-256 against OpenSSL's, which only this test links
$(BUILD)/tests/test_digest: $(BUILD)/tests/unit/test_digest.o $(LIB_A)
	$(call say,LINK,$@)$(CC) $(PB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs check libcrypto) $(PB_LIBS)
# provbus-consumer's duplicate filter and seq marks (tests/unit/test_seen.c)
$(BUILD)/tests/test_seen: $(BUILD)/tests/unit/test_seen.o $(BUILD)/consumer/seen.o $(LIB_A)
	$(call say,LINK,$@)$(CC) $(PB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs check) $(PB_LIBS)
# the decision core's suite fails each allocation in turn (tests/unit/test_decide.c)
$(BUILD)/tests/test_decide: PB_LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
tests-build: $(PROGRAMS) $(TEST_BIN) $(TOOL_BIN)
# the unit suites need the Check library, and the suites what check installs
$(TEST_SRC:%.c=$(BUILD)/%.o): | $(call deps_ok,check)

# what the test, demo and reliability scripts are told: which build's
# tools (BUILD) and programs (PB_BIN); tests/run.sh derives PB_SLOW (the
# factor for time windows) from the programs unless it is set
RUN_ENV = BUILD=$(BUILD) PB_BIN=$(abspath $(PROGDIR))

# make check: unit suites, then integration scripts against one private broker.
check: tests-build
	$(Q)$(RUN_ENV) tests/run.sh all
unit: tests-build
	$(Q)$(RUN_ENV) tests/run.sh unit
integration: tests-build
	$(Q)$(RUN_ENV) tests/run.sh integration
# mutation testing of the unit suites (tests/mutation/mutations.txt): each
# mutation applied alone in a copy of the tree; reports killed/survived
mutation:
	$(Q)tests/mutation/run.sh
# the unit suites under valgrind memcheck
valgrind-check: tests-build
	$(Q)$(RUN_ENV) PB_VALGRIND=1 tests/run.sh unit
# gcov line coverage of the decision core (lib/decide.c) by its suite, in
# a build of its own (build-cov); fails under COVERAGE_MIN percent
COVERAGE_MIN ?= 95
coverage-core:
	$(Q)$(MAKE) --no-print-directory BUILD=build-cov CFLAGS='-O0 -g --coverage' \
		LDFLAGS=--coverage build-cov/tests/test_decide
	$(Q)rm -f build-cov/lib/*.gcda build-cov/tests/unit/*.gcda && build-cov/tests/test_decide >/dev/null
	$(Q)gcov -o build-cov/lib lib/decide.c >build-cov/gcov.out && mv -f decide.c.gcov build-cov/ && rm -f *.gcov && cat build-cov/gcov.out | \
		awk -v min=$(COVERAGE_MIN) '/^File .*decide.c/ { f = 1 } \
		f && /^Lines executed/ { split($$2, a, ":"); sub("%", "", a[2]); \
		printf "lib/decide.c: %s%% of lines covered (minimum %s%%; build-cov/decide.c.gcov)\n", a[2], min; \
		exit !(a[2] + 0 >= min) }'

clean:
	rm -rf build build-san build-cov bin

-include $(shell find $(BUILD) -path $(BUILD)/deb -prune -o -name '*.d' -type f -print 2>/dev/null)

# --- install: programs, man pages, units, completion, an example config
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR ?= $(PREFIX)/share/doc/provbus
# the Chef report handler (the wrapper goes to BINDIR)
CHEFDIR ?= $(PREFIX)/share/provbus/chef
MANPAGES := $(sort $(wildcard docs/man/*.1))
MANPAGES5 := $(sort $(wildcard docs/man/*.5))
UNITS := deploy/systemd/provbus-consumer.service deploy/systemd/provbus-publish.service \
	deploy/systemd/provbus-publish.timer

install: $(PROGRAMS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/provbus/services.d
	install -m 0755 $(PROGRAMS) deploy/chef/provbus-chef-solo $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(CHEFDIR)
	sed 's|/usr/local/bin|$(BINDIR)|g' deploy/chef/provbus_handler.rb >$(DESTDIR)$(CHEFDIR)/provbus_handler.rb \
		&& chmod 0644 $(DESTDIR)$(CHEFDIR)/provbus_handler.rb
	$(if $(MANPAGES),install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MANPAGES5),install -m 0644 $(MANPAGES5) $(DESTDIR)$(MANDIR)/man5/)
	for u in $(UNITS); do \
		sed 's|/usr/local/bin|$(BINDIR)|g; s|/etc/provbus|$(SYSCONFDIR)/provbus|g' $$u \
			>$(DESTDIR)$(UNITDIR)/$$(basename $$u) && chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	install -m 0644 deploy/completion/provbus.bash $(DESTDIR)$(COMPLETIONDIR)/provbus
	for p in $(notdir $(PROGRAMS)); do \
		ln -sf provbus $(DESTDIR)$(COMPLETIONDIR)/$$p; done
	install -m 0644 deploy/examples/*.json $(DESTDIR)$(DOCDIR)/examples/
	[ -e $(DESTDIR)$(SYSCONFDIR)/provbus/provbus.json ] || \
		install -m 0640 deploy/examples/provbus.json $(DESTDIR)$(SYSCONFDIR)/provbus/provbus.json

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGRAMS)) provbus-chef-solo)
	rm -rf $(DESTDIR)$(CHEFDIR)
	rmdir $(DESTDIR)$(PREFIX)/share/provbus 2>/dev/null || true
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MANPAGES)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MANPAGES5)))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS)))
	rm -f $(DESTDIR)$(COMPLETIONDIR)/provbus $(addprefix $(DESTDIR)$(COMPLETIONDIR)/,$(notdir $(PROGRAMS)))
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "left in place: $(DESTDIR)$(SYSCONFDIR)/provbus (your configuration)"

# --- the Debian package (debian/): built from a copy of the tree in
# $(BUILD)/deb, where the .deb files land (see deploy/build-deb.sh)
deb: | $(call deps_ok,deb)
	$(Q)deploy/build-deb.sh $(BUILD)/deb

# --- the demo: a small fleet on this machine (deploy/demo/run-demo.sh)
demo: $(PROGRAMS) $(TOOL_BIN) | $(call deps_ok,demo)
	$(Q)$(RUN_ENV) deploy/demo/run-demo.sh

# --- fuzzing (clang libFuzzer): make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
fuzz: | $(call deps_ok,fuzz)
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run-fuzz.sh

# --- benchmarks (bench/run.sh; docs/BENCHMARKS.md keeps the last full run,
# docs/BENCHMARKS-rounds.md what was measured outside one)
# make bench SECTIONS="latency drain": only these sections (docs/ untouched)
bench: $(PROGRAMS) $(TOOL_BIN) | $(call deps_ok,bench)
	$(Q)BUILD=$(BUILD) BENCH_PROGRAMS=$(PROGDIR) $(if $(SECTIONS),BENCH_ONLY="$(SECTIONS)") bench/run.sh
bench-quick: $(PROGRAMS) $(TOOL_BIN) | $(call deps_ok,bench)
	$(Q)BUILD=$(BUILD) BENCH_PROGRAMS=$(PROGDIR) BENCH_QUICK=1 bench/run.sh

# --- the reliability scenarios (docs/RELIABILITY.md); a short form runs in
# make check (tests/integration/t-reliability-short.sh)
reliability: $(PROGRAMS) $(TOOL_BIN) | $(call deps_ok,demo) $(call deps_ok,partition)
	$(Q)$(RUN_ENV) tests/reliability/run.sh

# --- partitions: a fleet of hosts in network namespaces, 3 clustered
# brokers, faults on the network (root; tests/fleet/run.sh, docs/RELIABILITY.md)
.PHONY: partition
partition: $(PROGRAMS) $(BUILD)/tools/pbtest-delay | $(call deps_ok,partition)
	$(Q)PB_BIN=$(abspath $(PROGDIR)) PB_TOOLS=$(abspath $(BUILD)/tools) tests/fleet/run.sh $(SCENARIOS)
