//! A backend's response head with Location and Content-Location, rewritten
//! for the client (a backend choice, the client's Host, the head).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::locations(data));
