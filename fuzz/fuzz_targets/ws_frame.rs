//! A client's WebSocket text frame, parsed as im-gateway's connections parse it: any bytes
//! must give a frame or a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = im_gateway::fuzzing::parse_client_frame(data);
});
