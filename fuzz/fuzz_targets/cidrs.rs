//! An --allow range or list of ranges, and an address to test against it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camtls::fuzzing::cidrs(data));
