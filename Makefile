# natter: natterd (server), natter (client), natter-bench (load generator).
# `make` builds into build/, `make test` runs every test (plain and ASan+UBSan),
# `make run` starts a server on the defaults.

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

# CFLAGS, CPPFLAGS and LDFLAGS are the builder's (make CFLAGS=..., dpkg-buildflags):
# ours are added to them, never replaced by them. Warnings are errors only when
# asked for (WERROR=1, as .ci/run does), so a newer compiler cannot break a user's build.
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
PKGS    := libutf8proc icu-uc
PKGS_D  := inih libsystemd
PKG_CPPFLAGS := $(shell pkg-config --cflags $(PKGS) $(PKGS_D) 2>/dev/null)
LIBS_CORE := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lutf8proc -licuuc)
LIBS_D    := $(shell pkg-config --libs $(PKGS_D) 2>/dev/null || echo -linih -lsystemd)
NATTER_CPPFLAGS = -Isrc -D_GNU_SOURCE -DNATTER_VERSION='"$(VERSION)"' $(PKG_CPPFLAGS)
ALL_CPPFLAGS = $(NATTER_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP
LDLIBS_EDIT := $(shell pkg-config --libs libedit 2>/dev/null || echo -ledit)
CFLAGS_EDIT := $(shell pkg-config --cflags libedit 2>/dev/null)

# One concept per file; the folders are the layers (see docs/architecture.md):
# src/core below everything, src/server (with transport/ and codecs/), src/client,
# src/bench. Basenames are unique, so every object lands flat in $(BUILD)/.
CORE     := loop net buf lineframe text dict log
CORE     += num
CORE     += names
SERVER   := options listener conn tcp hub linecodec lineuser commands
SERVER   += addr
SERVER   += reload
# TLS (issue 11), with Debian's OpenSSL: the server's transport, and the client's
# side (core/tlsclient.c), linked only into natter and natter-bench.
SERVER   += tls
# Room keepers and server operators (issue 13)
SERVER   += roommodes hubmodes
# Server operators' passwords: Argon2id through Debian's libsodium, on a worker thread.
SERVER   += operauth keepers ircmodes
LDLIBS_SODIUM := $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium) -lpthread
CLIENT_TLS := tlsclient
LDLIBS_SSL := $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)
CFLAGS_SSL := $(shell pkg-config --cflags openssl 2>/dev/null)
# Room history (SQLite): history.c, and the plain protocol's side of it.
SERVER   += history linehistory
LDLIBS_SQLITE := $(shell pkg-config --libs sqlite3 2>/dev/null || echo -lsqlite3)
CFLAGS_SQLITE := $(shell pkg-config --cflags sqlite3 2>/dev/null)
SERVER   += ircmsg ircuser ircencode irccmds irccodec
SERVER   += irchistory
# The browser page and IRC over WebSocket (issue 14): WebSocket framing with
# Debian's libwslay, HTTP requests with Debian's libhttp-parser, and the page's
# files (web/) embedded at build time by web/embed.sh into $(BUILD)/webfiles.c.
SERVER   += ws httpcodec
LDLIBS_WEB := $(shell pkg-config --libs libwslay 2>/dev/null || echo -lwslay) \
              $(shell pkg-config --libs http-parser 2>/dev/null || echo -lhttp_parser)
CFLAGS_WEB := $(shell pkg-config --cflags libwslay 2>/dev/null)
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg web/*.ico))
CLIENT   := lineedit session
CLIENT   += $(CLIENT_TLS)
BENCH    := bench bench_worker bench_shared bench_hist
BENCH    += $(CLIENT_TLS)
SRC_DIRS := src/core src/server src/server/transport src/server/codecs \
            src/server/codecs/line src/server/codecs/irc src/server/codecs/http src/client src/bench
vpath %.c $(SRC_DIRS)
CORE_O   := $(CORE:%=$(BUILD)/%.o)
SERVER_O := $(SERVER:%=$(BUILD)/%.o) $(BUILD)/webfiles.o
CLIENT_O := $(CLIENT:%=$(BUILD)/%.o)
BENCH_O  := $(BENCH:%=$(BUILD)/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

all: $(BUILD)/natterd $(BUILD)/natter $(BUILD)/natter-bench

$(BUILD)/natterd: $(BUILD)/natterd.o $(SERVER_O) $(CORE_O)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS_D) $(LIBS_CORE) $(LDLIBS_SSL) $(LDLIBS_SQLITE) $(LDLIBS_SODIUM) $(LDLIBS_WEB) -lpthread

$(BUILD)/natter: $(BUILD)/natter.o $(CLIENT_O) $(CORE_O)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_EDIT) $(LIBS_CORE) $(LDLIBS_SSL)

$(BUILD)/natter-bench: $(BENCH_O) $(CORE_O)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS_CORE) -lpthread -lm $(LDLIBS_SSL)

$(BUILD)/lineedit.o $(BUILD)/natter.o: NATTER_CPPFLAGS += $(CFLAGS_EDIT)
$(BUILD)/tls.o $(BUILD)/tlsclient.o: NATTER_CPPFLAGS += $(CFLAGS_SSL)
$(BUILD)/history.o: NATTER_CPPFLAGS += $(CFLAGS_SQLITE)
$(BUILD)/ws.o $(BUILD)/httpcodec.o: NATTER_CPPFLAGS += $(CFLAGS_WEB) $(CFLAGS_SSL)

# The page, embedded: rebuilt when a file in web/ changes, or the list of them
# (webfiles.list is rewritten only when the list differs: a file removed counts).
$(BUILD)/webfiles.list: FORCE | $(BUILD)
	@echo '$(WEB_FILES)' | cmp -s - $@ || echo '$(WEB_FILES)' > $@
$(BUILD)/webfiles.c: web/embed.sh $(WEB_FILES) $(BUILD)/webfiles.list | $(BUILD)
	sh web/embed.sh $@ $(WEB_FILES)
$(BUILD)/webfiles.o: $(BUILD)/webfiles.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c | $(BUILD)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# $(filter ...): the .d files add headers to $^, which must not reach the compiler.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(SERVER_O) $(CORE_O) | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDFLAGS) $(LIBS_D) $(LIBS_CORE) $(LDLIBS_SSL) $(LDLIBS_SQLITE) $(LDLIBS_SODIUM) $(LDLIBS_WEB) -lpthread

# The history module's own benchmark (docs/PERFORMANCE.md): history and the hub, no sockets.
$(BUILD)/tests/history-bench: tests/tools/history-bench.c $(BUILD)/history.o $(BUILD)/hub.o $(BUILD)/hubmodes.o $(BUILD)/roommodes.o $(CORE_O) | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDFLAGS) $(LIBS_CORE) $(LDLIBS_SQLITE) -lpthread

$(BUILD)/tests/%: tests/tools/%.c $(CORE_O) | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDFLAGS) $(LIBS_CORE)

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)

tests: all $(UNIT_BIN) $(TEST_BIN)

# make test: the whole suite, then again under ASan+UBSan, one summary line.
# The tests run under pytest (pytest.ini, tests/conftest.py): the unit checks and the
# end-to-end tests once per build directory, ids ending in [build] or [build-asan].
# One test or a subset (a pytest -k expression), after building both trees:
#   make test-e2e K=test_nick_rules
#   make test-e2e K='flood and build-asan'
# or by hand, once make test has built them (--build=DIR picks a tree; default both):
#   /usr/bin/python3 -m pytest tests/e2e/test_server.py::test_nick_rules --build=build
#   /usr/bin/python3 -m pytest -k 'lineframe or nick'
# Each test has 120 s (NATTER_TEST_TIMEOUT=N to change); extra pytest options: PYTEST_FLAGS.
# Debian's pytest is /usr/bin/python3's (another python3 first on PATH may lack it).
PYTHON      ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PYTEST_FLAGS ?= -v
PYTEST_BUILDS := --build=build --build=build-asan

test: test-trees
	@if command -v $(FUZZ_CC) >/dev/null; then $(MAKE) fuzz-build; \
	 else echo "no $(FUZZ_CC): the fuzz smoke run is skipped"; fi
	NATTER_FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) $(PYTHON) -m pytest $(PYTEST_FLAGS) $(PYTEST_BUILDS)

test-e2e: test-trees
	$(PYTHON) -m pytest $(PYTEST_FLAGS) $(PYTEST_BUILDS) tests/e2e $(if $(K),-k '$(K)')

# Both trees the tests run against: build/ and build-asan/ (ASan+UBSan).
test-trees: deps
	$(MAKE) BUILD=build tests
	$(MAKE) BUILD=build-asan CFLAGS='-O1 -g -fno-omit-frame-pointer' \
		SANFLAGS='-fsanitize=address,undefined -fno-sanitize-recover=all' tests

# make bench: the performance scenarios of docs/PERFORMANCE.md (minutes; not part of make test).
bench: all $(BUILD)/tests/bcast-server
	bench/run.sh $(BUILD)

run: deps all
	./$(BUILD)/natterd

# Debian packages the build needs; installed when we may, asked for otherwise.
DEB_LIBS := libedit-dev libinih-dev libsystemd-dev libutf8proc-dev libicu-dev libwslay-dev libhttp-parser-dev pkg-config
deps:
	@pkg-config --exists sqlite3 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libsqlite3-dev (natterd keeps room history in SQLite)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsqlite3-dev sqlite3 pkg-config; \
	  else echo "natterd needs Debian packages: sudo apt-get install libsqlite3-dev sqlite3 pkg-config" >&2; exit 1; fi; }
	@pkg-config --exists libedit inih libsystemd libutf8proc icu-uc 2>/dev/null && \
	  { pkg-config --exists libwslay 2>/dev/null || test -f /usr/include/wslay/wslay.h; } && \
	  test -f /usr/include/http_parser.h || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(DEB_LIBS) (line editing, configuration files, systemd, Unicode, WebSocket, HTTP)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_LIBS); \
	  else echo "natter needs Debian packages: sudo apt-get install $(DEB_LIBS) python3 python3-pytest python3-pytest-timeout" >&2; exit 1; fi; }
	@pkg-config --exists openssl 2>/dev/null && command -v openssl >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libssl-dev openssl (TLS, and certificates for its tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev openssl; \
	  else echo "natter needs Debian packages: sudo apt-get install libssl-dev openssl" >&2; exit 1; fi; }
	@$(PYTHON) -c 'import pytest, pytest_timeout' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-pytest python3-pytest-timeout (make test runs under pytest)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pytest python3-pytest-timeout; \
	  else echo "make test needs pytest for $(PYTHON): sudo apt-get install python3-pytest python3-pytest-timeout" >&2; exit 1; fi; }

# make install: the programs, their man pages, a systemd unit (Type=notify,
# hardened) and an example configuration file; make uninstall removes them again.
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/natter
UNITDIR     ?= $(PREFIX)/lib/systemd/system
INSTALLED   := $(BINDIR)/natterd $(BINDIR)/natter $(BINDIR)/natter-bench $(MANDIR)/man1/natter.1 \
               $(MANDIR)/man1/natter-bench.1 $(MANDIR)/man8/natterd.8 $(UNITDIR)/natterd.service \
               $(DOCDIR)/natterd.conf.example

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(BUILD)/natterd $(BUILD)/natter $(BUILD)/natter-bench $(DESTDIR)$(BINDIR)/
	install -m 644 man/natter.1 man/natter-bench.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/natterd.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|@BINDIR@|$(BINDIR)|g' dist/natterd.service.in > $(DESTDIR)$(UNITDIR)/natterd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/natterd.service
	install -m 644 dist/natterd.conf $(DESTDIR)$(DOCDIR)/natterd.conf.example

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

# Fuzzing with clang's libFuzzer (ASan+UBSan), built into build-fuzz/:
#   make fuzz                       each target for FUZZ_SECONDS (default 60) seconds
#   make fuzz FUZZ_SECONDS=10       a quick check
#   make fuzz FUZZ_SECONDS=3600     a long run; or run one target by hand, e.g.
#     build-fuzz/fuzz_framing -jobs=4 -workers=4 build-fuzz/corpus/framing tests/fuzz/corpus/framing
#   (stop with Ctrl-C; the corpus grows in build-fuzz/corpus/, crashes are saved as build-fuzz/crash-*).
# Reproduce a crash: build-fuzz/fuzz_framing build-fuzz/crash-framing-<hash>
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
# make test runs each fuzz target this long (seconds) from its seed corpus.
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_FLAGS   := -std=c11 $(WARN) -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SERVER  := $(filter-out %/log.c,$(foreach f,$(CORE) $(SERVER),$(wildcard $(addsuffix /$(f).c,$(SRC_DIRS)))))
HEADERS      := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.h))

build-fuzz/fuzz_sanitize: tests/fuzz/fuzz_sanitize.c tests/fuzz/fuzz_util.h src/core/text.c src/core/text.h src/core/names.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_sanitize.c src/core/text.c src/core/names.c $(LIBS_CORE)

# The page's files, for the HTTP codec among FUZZ_SERVER.
build-fuzz/webfiles.c: web/embed.sh $(WEB_FILES)
	@mkdir -p build-fuzz
	sh web/embed.sh $@ $(WEB_FILES)

build-fuzz/fuzz_framing: tests/fuzz/fuzz_framing.c tests/fuzz/fuzz_util.h tests/fuzz/fuzz_nolog.h $(FUZZ_SERVER) $(HEADERS) build-fuzz/webfiles.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(CFLAGS_SQLITE) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_framing.c $(FUZZ_SERVER) build-fuzz/webfiles.c $(LIBS_D) $(LIBS_CORE) $(LDLIBS_SSL) $(LDLIBS_SQLITE) $(LDLIBS_SODIUM) $(LDLIBS_WEB) -lpthread

build-fuzz/fuzz_irc: tests/fuzz/fuzz_irc.c tests/fuzz/fuzz_util.h tests/fuzz/fuzz_nolog.h $(FUZZ_SERVER) $(HEADERS) build-fuzz/webfiles.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(CFLAGS_SQLITE) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_irc.c $(FUZZ_SERVER) build-fuzz/webfiles.c $(LIBS_D) $(LIBS_CORE) $(LDLIBS_SSL) $(LDLIBS_SQLITE) $(LDLIBS_SODIUM) $(LDLIBS_WEB) -lpthread

build-fuzz/fuzz_web: tests/fuzz/fuzz_web.c tests/fuzz/fuzz_util.h tests/fuzz/fuzz_nolog.h $(FUZZ_SERVER) $(HEADERS) build-fuzz/webfiles.c
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(CFLAGS_SQLITE) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_web.c $(FUZZ_SERVER) build-fuzz/webfiles.c $(LIBS_D) $(LIBS_CORE) $(LDLIBS_SSL) $(LDLIBS_SQLITE) $(LDLIBS_SODIUM) $(LDLIBS_WEB) -lpthread

fuzz-build: build-fuzz/fuzz_sanitize build-fuzz/fuzz_framing build-fuzz/fuzz_irc build-fuzz/fuzz_web

fuzz: fuzz-build
	@for t in sanitize framing irc web; do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS)s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

.PHONY: fuzz fuzz-build

# make soak: hundreds of clients churning against natterd for a minute, checked for
# lost, duplicated, reordered or misrouted messages and for descriptors and memory
# back at baseline (tests/soak.py; a short one runs in `make test`).
# Longer: make soak SOAK_SECONDS=600; replay: make soak SOAK_FLAGS='--seed N'.
SOAK_SECONDS ?= 60
SOAK_CLIENTS ?= 300
SOAK_FLAGS   ?=

soak: $(BUILD)/natterd
	python3 tests/soak.py --build $(BUILD) --seconds $(SOAK_SECONDS) --clients $(SOAK_CLIENTS) $(SOAK_FLAGS)

.PHONY: soak

clean:
	rm -rf build build-asan build-fuzz

FORCE:

.PHONY: all tests test test-e2e test-trees bench run deps install uninstall clean FORCE
