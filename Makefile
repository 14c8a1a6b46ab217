# mimamori: the two commands of the README.
#   make demo   set up .venv, then run a whole synthetic ward month by month, register two demo
#               approvers (their private keys in demo/approver-keys/, outside every zone), release the newest list
#   make test   set up .venv with the dev extras, then run the test suite
#   make matrix the full ward matrix (slow; before every release)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
DEMO_RESIDENTS ?= 20000
DEMO_MONTHS ?= 24
DEMO_END ?= 2026-10
DEMO_SEED ?= 7
MIMAMORI := MIMAMORI_INBOX=$(DEMO)/inbox MIMAMORI_WORK=$(DEMO)/work MIMAMORI_CUSTODY=$(DEMO)/custody $(BIN)/mimamori

.PHONY: demo test matrix acceptance install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	rm -rf $(DEMO)
	$(MIMAMORI) keygen
	$(MIMAMORI) synth --residents $(DEMO_RESIDENTS) --months $(DEMO_MONTHS) --end-month $(DEMO_END) \
		--seed $(DEMO_SEED) --messy --truth $(DEMO)/truth/latent_state.csv
	$(MIMAMORI) run --all
	$(MIMAMORI) approver add --id A01 --name "デモ承認者A" --role "高齢福祉課長" --key-out $(DEMO)/approver-keys/A01.key
	$(MIMAMORI) approver add --id B01 --name "デモ承認者B" --role "保健予防課長" --key-out $(DEMO)/approver-keys/B01.key
	$(MIMAMORI) approve --month $(DEMO_END) --approver-id A01 --key-file $(DEMO)/approver-keys/A01.key \
		--basis "個人情報保護法第69条第2項第2号" --purpose "孤立の予防のための見守り訪問"
	$(MIMAMORI) approve --month $(DEMO_END) --approver-id B01 --key-file $(DEMO)/approver-keys/B01.key \
		--basis "社会福祉法第106条の6 支援会議" --purpose "孤立の予防のための見守り訪問"
	$(MIMAMORI) release --month $(DEMO_END)
	$(MIMAMORI) truth-check --month $(DEMO_END) --truth $(DEMO)/truth/latent_state.csv
	$(MIMAMORI) audit verify
	@echo; echo "web app accounts (demo only; the passwords are random and printed once):"
	@for account in coordinator:coordinator approver-a:approver:A01 approver-b:approver:B01 auditor:auditor \
			analyst:analyst custodian:custodian; do \
		name=$${account%%:*}; rest=$${account#*:}; role=$${rest%%:*}; id=$${rest#$$role}; id=$${id#:}; \
		pw=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))'); \
		printf '%s\n' "$$pw" | $(MIMAMORI) users add demo-$$name --role $$role $${id:+--approver-id $$id} >/dev/null; \
		echo "  demo-$$name  $$pw$${id:+  (approver $$id, key demo/approver-keys/$$id.key)}"; \
	done
	@echo; echo "mimamori demo finished."
	@$(MIMAMORI) where --month $(DEMO_END)
	@echo "  web app: MIMAMORI_INBOX=$(DEMO)/inbox MIMAMORI_WORK=$(DEMO)/work MIMAMORI_CUSTODY=$(DEMO)/custody $(BIN)/mimamori serve"

# Two workers: the suite is single-threaded Python for most of its time, and CI has 2 cores.
# loadgroup keeps the Spark tests (xdist_group "spark") on one worker: one Spark session per run.
test: install-dev
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The full ward matrix (issue 12): every size (500, 2,000, 6,000 residents) × history (1, 3, 8, 14
# months) × clean/messy, end to end through release and audit verify. Slow; run before every release.
matrix: install-dev
	MIMAMORI_FULL_MATRIX=1 $(BIN)/python -m pytest -q -n 2 -m matrix tests/test_ward_matrix.py

# Issue 5's acceptance: a 50k-resident ward over 30 months; the champion's precision against the
# latent truth next to the three rules at the same capacity (about 6 minutes on 2 cores).
ACC := acceptance
ACCEPT := MIMAMORI_INBOX=$(ACC)/inbox MIMAMORI_WORK=$(ACC)/work MIMAMORI_CUSTODY=$(ACC)/custody $(BIN)/mimamori
acceptance: install
	rm -rf $(ACC)
	$(ACCEPT) keygen
	$(ACCEPT) synth --residents 50000 --months 30 --end-month 2026-10 --seed 7 --messy --truth $(ACC)/truth.csv
	$(ACCEPT) run --all
	$(ACCEPT) truth-check --month 2026-10 --truth $(ACC)/truth.csv

clean:
	rm -rf $(DEMO) $(ACC) .pytest_cache
