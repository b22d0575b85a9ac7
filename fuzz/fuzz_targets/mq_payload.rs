//! The mq payloads as their consumers decode them: `Upstream` (im-logic), `Downstream`
//! (im-gateway, rendered into the frame it pushes) and `Task` (im-task). Any bytes must decode
//! or be refused, never panic; what decodes must survive encoding and decoding again.
#![no_main]

use gochat_proto::{
    events::{Downstream, Task, Upstream},
    prost::Message,
};
use libfuzzer_sys::fuzz_target;

/// Decodes `data` as `M`; a message that decodes is encoded again and must decode to itself.
fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(message) = M::decode(data) {
        match M::decode(message.encode_to_vec().as_slice()) {
            Ok(again) => assert!(again == message, "{again:?} != {message:?}"),
            Err(e) => panic!("{message:?} encoded does not decode: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Upstream>(data);
    round_trip::<Downstream>(data);
    round_trip::<Task>(data);
    let _ = im_gateway::fuzzing::render_downstream(data);
});
