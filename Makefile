# defendable: PGXS build of the extension, plus the Postgres-free core's unit tests.
#
#   make                 build the extension
#   make install         install it into the PostgreSQL that pg_config names
#   make installcheck    pg_regress suites (sql/, expected/) and isolation specs (specs/)
#   make core-check      unit tests of extension/core, no server needed
#   make bench-smoke     every benchmark at a tiny size (after make install)
#
# scripts/test runs all of it against a throwaway cluster; scripts/demo runs the main job.

EXTENSION = defendable
MODULE_big = defendable
DATA = extension/defendable--0.1.sql extension/defendable--0.1--0.2.sql \
       extension/defendable--0.2--0.3.sql extension/defendable--0.3--0.4.sql \
       extension/defendable--0.4--0.5.sql extension/defendable--0.5--0.6.sql \
       extension/defendable--0.6--0.7.sql extension/defendable--0.7--0.8.sql \
       extension/defendable--0.8--0.9.sql
PGFILEDESC = "defendable - tamper-evident receipts ledger"

CORE_SRCS = extension/core/dfd_buf.c extension/core/dfd_encode.c extension/core/dfd_sha256.c \
            extension/core/dfd_jcs.c extension/core/dfd_receipt.c extension/core/dfd_merkle.c \
            extension/core/dfd_note.c
OBJS = extension/defendable.o extension/append.o extension/verify.o extension/body.o \
       extension/jsonb_jcs.o extension/merkle.o extension/checkpoint.o extension/share.o \
       extension/access.o extension/direct.o \
       $(CORE_SRCS:.c=.o)

REGRESS = format append verify tamper bad_input permissions merkle share erasure checkpoint \
          upgrade identity invites apikeys cross_org quota roles gateway_api \
          datasets billing runs outbox scaling proof_privileges direct_writes
REGRESS_OPTS = --inputdir=. --outputdir=. --load-extension=defendable
ISOLATION = append_same_org append_other_orgs append_subxact magic_link_double_spend quota_exact \
            runner_claim frontier_cache
ISOLATION_OPTS = --load-extension=defendable

# no LLVM bitcode: JIT-inlining these functions gains nothing and would need clang to build
override with_llvm = no

PG_CONFIG ?= pg_config
# -Wextra's unused-parameter and sign-compare fire inside PostgreSQL's own headers and macros
PG_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
            -Wno-missing-field-initializers -Wno-declaration-after-statement
PG_CPPFLAGS = -I$(srcdir)/extension
SHLIB_LINK = -lcrypto

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object is rebuilt when a header it includes changes (inline functions live in them: a
# stale object would call one that no longer exists as a symbol)
$(OBJS): extension/dfd_pg.h extension/core/dfd_core.h extension/core/dfd_merkle.h \
         extension/core/dfd_note.h

# ---- gateway/: the offline verifier CLI (and later the HTTP gateway) -----------------------------
# built by `make`, installed by `make install`, cleaned by `make clean`
DFD_BINDIR ?= /usr/local/bin

all: gateway-build
.PHONY: gateway-build install-gateway clean-gateway
gateway-build:
	$(MAKE) -C gateway all

install: install-gateway
install-gateway: gateway-build
	$(INSTALL) -d '$(DESTDIR)$(DFD_BINDIR)'
	$(INSTALL) -m 755 gateway/defendable-verify '$(DESTDIR)$(DFD_BINDIR)/defendable-verify'
	$(INSTALL) -m 755 gateway/defendable-gateway '$(DESTDIR)$(DFD_BINDIR)/defendable-gateway'

clean: clean-gateway
clean-gateway:
	$(MAKE) -C gateway clean

# ---- core unit tests (no PostgreSQL) ----------------------------------------------------------
# One program per protocol family; each prints "<name>: N passed, N failed".
CORE_TESTS = test_core test_merkle test_note
CORE_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -O2 -g -Wall -Wextra -Werror
CORE_SAN_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -O1 -g -Wall -Wextra -Werror \
                  -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CORE_LIBS = -lcrypto -ljansson -lm
CORE_DEPS = $(CORE_SRCS) $(wildcard extension/core/*.h)

extension/core/test_%: extension/core/test_%.c $(CORE_DEPS)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

# the same tests under AddressSanitizer and UndefinedBehaviorSanitizer, stopping at the first report
extension/core/sanitized_%: extension/core/test_%.c $(CORE_DEPS)
	$(CC) $(CORE_SAN_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

.PHONY: core-check core-check-sanitized
core-check: $(addprefix extension/core/,$(CORE_TESTS))
	@for t in $(CORE_TESTS); do ./extension/core/$$t extension/core/testdata/vectors || exit 1; done

core-check-sanitized: $(addprefix extension/core/sanitized_,$(CORE_TESTS:test_%=%))
	@for t in $(CORE_TESTS:test_%=%); do ./extension/core/sanitized_$$t extension/core/testdata/vectors || exit 1; done

EXTRA_CLEAN = $(addprefix extension/core/,$(CORE_TESTS)) \
              $(addprefix extension/core/sanitized_,$(CORE_TESTS:test_%=%)) \
              results/ output_iso/ regression.diffs regression.out

# Every benchmark at a tiny size against what is installed (make install first), so the scripts
# never rot; figures from it mean nothing and nothing is asserted about them. The real runs and
# their results: bench/README.md, docs/benchmarks.md.
.PHONY: bench-smoke
bench-smoke:
	DFD_SKIP_BUILD=1 bash bench/proofs.sh 3000 20
	DFD_SKIP_BUILD=1 bash bench/append.sh 1000 1 500 1
	DFD_SKIP_BUILD=1 bash bench/verify.sh 3000
	DFD_SKIP_BUILD=1 bash bench/verify-split.sh 4 500
	DFD_SKIP_BUILD=1 bash bench/quota.sh 1
	DFD_SKIP_BUILD=1 BENCH_CONNS="1 16" bash bench/gateway.sh 1
	DFD_SKIP_BUILD=1 BENCH_ROUTES=share BENCH_CONNS=16 DFD_SAMPLE_WARMUP=0.5 DFD_SAMPLE_WINDOW=1 \
	    /usr/bin/python3 bench/cpu_sampler.py /dev/stdout -- bash bench/gateway.sh 3
