#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l5d_fuzz::proxy_config(data));
