//! A request head, for its request target: origin, absolute and odd forms.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::targets(data));
