# keyguard: the Makefile is the CI contract. `make test` is what .ci/run runs.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(BIN)/versitygw
VERSITYGW_STAMP := $(BIN)/.versitygw-$(VERSITYGW_VERSION)
FUZZTIME ?= 15s
export KEYGUARD_VERSITYGW := $(VERSITYGW)

.PHONY: all run serve session simulate test vet fmt-check unit bench fuzz tools build images clean

all: test

## tools: install the pinned test tools into ./bin (reused when present)
tools: $(VERSITYGW_STAMP)

$(VERSITYGW_STAMP):
	@mkdir -p $(BIN)
	@echo "installing versitygw $(VERSITYGW_VERSION) into bin/ (first time only, about 2 minutes)"
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	@rm -f $(BIN)/.versitygw-* && touch $@

## run: the whole system on loopback with the sample fleet, a simulated week, then exit
run: $(VERSITYGW_STAMP)
	$(GO) run ./test/cmd/keyguard-local run

## serve: the whole system on loopback, kept up on wall time until Ctrl-C; prints the
## environment (export lines) under which the operator command works against it
serve: $(VERSITYGW_STAMP)
	$(GO) run ./test/cmd/keyguard-local serve

## session: the README's session in tmux: serve on the left, the operator command on the right
session: $(VERSITYGW_STAMP)
	./test/session.sh

## simulate: the default simulated year (50 databases, typical faults) beside the cron script, then
## the hostile profile over 20 seeds; SIMFLAGS adds flags (e.g. SIMFLAGS="-svg bin/timeline")
simulate:
	$(GO) run ./test/cmd/keyguard-local simulate $(SIMFLAGS)
	$(GO) run ./test/cmd/keyguard-local simulate -faults hostile -seeds 20

## test: vet, formatting, and every test including the integration tests against versitygw
test: vet fmt-check $(VERSITYGW_STAMP)
	$(GO) test -count=1 -race -timeout 20m ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: Go benchmarks (figures go in notes, never in timed tests)
bench: $(VERSITYGW_STAMP)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

## fuzz: run each fuzz target for FUZZTIME
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.buildVersion=$(or $(VERSION),dev)" -o $(BIN)/ ./functions/... ./cmd/...

## images: container images of every function (no Docker needed): bin/images/oci and bin/images/keyguard-<fn>.tar
images:
	$(GO) run ./infra/images/cmd/buildimage -out $(BIN)/images -version $(or $(VERSION),dev)

## tf-fmt: terraform fmt -check over infra/ with terraform built at a pinned version into ./bin
## (about 3 minutes the first time; no provider, registry or cloud account needed). go test
## ./infra/check checks the same formatting with hclwrite in milliseconds; this is the real tool.
TERRAFORM_VERSION := v1.5.7
TERRAFORM := $(BIN)/terraform
TERRAFORM_STAMP := $(BIN)/.terraform-$(TERRAFORM_VERSION)

.PHONY: tf-fmt
tf-fmt: $(TERRAFORM_STAMP)
	TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 $(TERRAFORM) fmt -check -diff -recursive infra

$(TERRAFORM_STAMP):
	@mkdir -p $(BIN)
	@echo "installing terraform $(TERRAFORM_VERSION) into bin/ (first time only, about 3 minutes)"
	GOBIN=$(BIN) $(GO) install github.com/hashicorp/terraform@$(TERRAFORM_VERSION)
	@rm -f $(BIN)/.terraform-* && touch $@

## cloud-test: the acceptance run on IBM Cloud, never part of make test (docs/deploy.md, "Acceptance
## run on IBM Cloud"): apply infra/examples/basic with TFVARS, keyguard preflight, one full backup of
## the Db2 on Cloud database DB, its restore plan, destroy. Needs IBMCLOUD_API_KEY and pushed images.
## CLOUDTEST_FLAGS=-dry-run prints the steps; -keep leaves the deployment up.
.PHONY: cloud-test
cloud-test: $(TERRAFORM_STAMP)
	@test -n "$(TFVARS)" -a -n "$(DB)" || { echo "usage: make cloud-test TFVARS=path/to.tfvars DB=<db2saas database> [CLOUDTEST_FLAGS=-dry-run]"; exit 2; }
	$(GO) run ./test/cmd/cloudtest -tfvars $(TFVARS) -db $(DB) -terraform $(TERRAFORM) $(CLOUDTEST_FLAGS)

clean:
	rm -rf $(BIN)
