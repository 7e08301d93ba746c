# make test-tls-audit: an independent TLS scanner (sslyze) against the real
# camtls binary, with an ECDSA and an RSA certificate, failing on anything the
# TLS policy rules out (docs/security.md). sslyze is pinned in its own virtual
# environment: it fixes versions of cryptography and pydantic that should not
# be forced on the interpreter the other tests share.
APT_PACKAGES += python3-venv
TEST_TARGETS += test-tls-audit

TLS_AUDIT_VENV := target/tls-audit-venv
TLS_AUDIT_REQS := tests/tls_audit/requirements.txt

# Rebuilt only when the pins change; a half-made environment is removed, so a
# failed download is retried next time.
$(TLS_AUDIT_VENV)/.installed: $(TLS_AUDIT_REQS)
	rm -rf $(TLS_AUDIT_VENV)
	python3 -m venv $(TLS_AUDIT_VENV)
	$(TLS_AUDIT_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $(TLS_AUDIT_REQS) \
	  || { rm -rf $(TLS_AUDIT_VENV); exit 1; }
	touch $@

.PHONY: test-tls-audit
# Against the static x86_64 build, as shipped (mk/release.mk).
TLS_AUDIT_BIN := $(call dist_bin,x86_64-unknown-linux-musl)

test-tls-audit: deps $(TLS_AUDIT_BIN) $(TLS_AUDIT_VENV)/.installed
	CAMTLS_BIN=$(TLS_AUDIT_BIN) $(TLS_AUDIT_VENV)/bin/python tests/tls_audit/audit.py
