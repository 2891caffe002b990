# defendable: PGXS build of the extension, plus the Postgres-free core's unit tests.
#
#   make                 build the extension
#   make install         install it into the PostgreSQL that pg_config names
#   make installcheck    pg_regress suites (sql/, expected/) and isolation specs (specs/)
#   make core-check      unit tests of extension/core, no server needed
#
# scripts/test runs all of it against a throwaway cluster; scripts/demo runs the main job.

EXTENSION = defendable
MODULE_big = defendable
DATA = extension/defendable--0.1.sql
PGFILEDESC = "defendable - tamper-evident receipts ledger"

CORE_SRCS = extension/core/dfd_buf.c extension/core/dfd_encode.c extension/core/dfd_sha256.c \
            extension/core/dfd_jcs.c extension/core/dfd_receipt.c
OBJS = extension/defendable.o extension/append.o extension/verify.o extension/body.o \
       extension/jsonb_jcs.o $(CORE_SRCS:.c=.o)

REGRESS = format append verify tamper bad_input permissions
REGRESS_OPTS = --inputdir=. --outputdir=. --load-extension=defendable
ISOLATION = append_same_org append_other_orgs append_subxact
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

# ---- core unit tests (no PostgreSQL) ----------------------------------------------------------
CORE_TEST = extension/core/test_core
CORE_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -O2 -g -Wall -Wextra -Werror $(CORE_SANITIZE)

$(CORE_TEST): extension/core/test_core.c $(CORE_SRCS) extension/core/dfd_core.h
	$(CC) $(CORE_CFLAGS) -o $@ extension/core/test_core.c $(CORE_SRCS) -lcrypto -ljansson -lm

.PHONY: core-check core-check-sanitized
core-check: $(CORE_TEST)
	./$(CORE_TEST) extension/core/testdata/vectors

# the same tests under AddressSanitizer and UndefinedBehaviorSanitizer, stopping at the first report
CORE_TEST_SAN = extension/core/test_core_sanitized
$(CORE_TEST_SAN): extension/core/test_core.c $(CORE_SRCS) extension/core/dfd_core.h
	$(CC) $(CORE_CFLAGS) -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer -o $@ extension/core/test_core.c $(CORE_SRCS) -lcrypto -ljansson -lm

core-check-sanitized: $(CORE_TEST_SAN)
	./$(CORE_TEST_SAN) extension/core/testdata/vectors

EXTRA_CLEAN = $(CORE_TEST) $(CORE_TEST_SAN) results/ output_iso/ regression.diffs regression.out
