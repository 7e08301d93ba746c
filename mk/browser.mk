# make test-browser: a real browser through the shipped binary. Headless
# Chromium loads the sample camera through the static x86_64 release build
# (mk/release.mk makes it) and reads from the page that the MJPEG plays, that
# the WebSocket echoes, after a reload and in other tabs of the same origin;
# Chromium's NetLog shows that its later connections resumed the first one's
# TLS 1.3 session and that it reached nothing but 127.0.0.1. About 10 s; the
# screenshot is target/browser/screenshot.png (docs/building.md).
#
# Debian's chromium, installed without its recommends: one font for the page,
# openssl for the certificate's SPKI hash that Chromium is told to trust.
APT_PACKAGES += chromium fonts-dejavu-core openssl
TEST_TARGETS += test-browser

BROWSER_TEST_BIN := $(call dist_bin,x86_64-unknown-linux-musl)

.PHONY: test-browser
test-browser: deps $(BROWSER_TEST_BIN)
	python3 tests/browser/browser_test.py --camtls $(BROWSER_TEST_BIN)
