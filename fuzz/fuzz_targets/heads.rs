//! Arbitrary bytes as a request head followed by a response head.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::heads(data));
