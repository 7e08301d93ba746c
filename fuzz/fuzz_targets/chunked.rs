//! Arbitrary bytes as a chunked body, split at a point the input chooses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::chunked(data));
