# make fuzz: libFuzzer on the head parsers and the chunked decoder (nightly,
# cargo-fuzz from crates.io). Not part of `make test`; the same properties
# run there on a fixed set of mutated inputs (src/fuzzing.rs).
FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	@rustup component list --toolchain nightly --installed | grep -q rust-src || rustup component add rust-src --toolchain nightly
	cd fuzz && for t in heads chunked; do \
	  $(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=20000 || exit 1; \
	done
