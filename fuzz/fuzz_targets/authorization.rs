//! An Authorization value: the Basic parse, base64 and the login check.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::authorization(data));
