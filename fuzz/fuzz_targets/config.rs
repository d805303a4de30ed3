//! The config parser and validator on any text: an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patroni_router::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_json(text, "fuzz");
    }
});
