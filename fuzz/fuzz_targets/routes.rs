//! A --route value, and the same text as a backend and a listen address.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::routes(data));
