//! What `/engage` (user profiles) and `/groups` (group profiles) share (`mixpanel-api.md` §2, §3): a
//! record is a JSON array of update objects for one profile; a request is the flat array of its
//! records' updates with the target's `$token` put into each, sent as plain JSON with `?verbose=1`;
//! the answer is `{"status":1|0,"error":…}` for the request as a whole.

pub(crate) mod encoder;
pub(crate) mod request_builder;
pub(crate) mod response;
