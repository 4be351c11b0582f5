# zone-publisher: `make run` starts it on the embedded default, `make test` installs what the tests
# need and runs them, `make bench` measures it against named-checkzone, kzonecheck and octoDNS.
PYTHON ?= python3
APT_PACKAGES = bind9 bind9-utils bind9-dnsutils knot knot-dnsutils knot-dnssecutils pdns-server pdns-backend-sqlite3 sqlite3 chromium git lua5.1 nginx openssl postgresql
PYTEST_ARGS ?=

.PHONY: run test test-fast test-slow install install-system bench clean

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

# Debian packages for the real servers the tests start (named, knotd, pdns_server, postgres, chromium).
install-system:
	@missing=""; \
	for tool in named knotd pdns_server chromium named-checkzone kzonecheck sqlite3 git dig lua5.1 nginx openssl; do \
		command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	[ -f /usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so ] || ls /usr/lib/*/pdns/libgsqlite3backend.so >/dev/null 2>&1 || missing="$$missing pdns-backend-sqlite3"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (missing:$$missing)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

run: install
	$(PYTHON) -m publisher serve --listen 127.0.0.1:8053

test: install-system install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PYTHON) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install-system install
	$(PYTHON) -m pytest -m slow $(PYTEST_ARGS)

bench: install-system install
	bash bench/run

clean:
	rm -rf var .pytest_cache build *.egg-info
