# slimbuild: two commands do everything on a fresh Debian machine (as root):
#   make demo   build the example three ways and show the payoff
#   make test   install what the tests need, then run every test
SHELL := /bin/bash
GO ?= go
BIN := bin/slimbuild
export SLIMBUILD_CACHE ?= /var/cache/slimbuild-bases

.PHONY: all build deps test unit crash demo parity bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/slimbuild

# System packages the builder and its tests use, installed only when missing.
deps:
	@hack/deps.sh

# Unit and integration tests (root, runc, overlayfs), the kill and concurrency
# tests of the store, the BuildKit parity cases against their recorded results,
# and docker load of slimbuild's docker-archives.
test: deps build
	hack/bases.sh
	SLIMBUILD_CORPUS_TABLE=$(CURDIR)/bin/slim-corpus.txt SLIMBUILD_ADVISE_TABLE=$(CURDIR)/bin/advise-corpus.txt SLIMBUILD_BASES=$(SLIMBUILD_CACHE) $(GO) test -count=1 -timeout 30m ./...
	@echo "slim corpus (internal/slim TestCorpus, apps in test/slim/):"; cat bin/slim-corpus.txt
	@echo "advise corpus (internal/advise TestAdviseCorpus: single-stage Dockerfiles rewritten, built, verified):"; cat bin/advise-corpus.txt
	SLIMBUILD=$(CURDIR)/$(BIN) test/crash/run.sh
	SLIMBUILD=$(CURDIR)/$(BIN) test/crash/concurrent.sh
	SLIMBUILD=$(CURDIR)/$(BIN) test/parity/run.sh
	SLIMBUILD=$(CURDIR)/$(BIN) test/dockerload/run.sh

unit:
	$(GO) test -count=1 ./...

demo: deps build
	hack/demo.sh

# The kill test (50 SIGKILLed builds) and the concurrency test alone.
crash: deps build
	hack/bases.sh
	SLIMBUILD=$(CURDIR)/$(BIN) test/crash/run.sh
	SLIMBUILD=$(CURDIR)/$(BIN) test/crash/concurrent.sh

parity: deps build
	hack/bases.sh
	SLIMBUILD=$(CURDIR)/$(BIN) test/parity/run.sh

bench: deps build
	bench/run.sh

clean:
	rm -rf bin
