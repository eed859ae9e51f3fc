//! What the two edges of the HTTP layer share: the JSON API (`routes`) and the web app's
//! pages (`pages`) both import this module, and neither imports the other.
//!
//! - [`PathId`]: a path segment parsed as an id, where anything else is "not found";
//! - [`receive_upload`]: a multipart photo upload streamed into the photo service;
//! - [`receive_import`]: a multipart upload of track files, streamed into an import;
//! - [`serve_photo`]: a photo rendition with its ETag and cache headers;
//! - [`guarded`]: the deadline and panic layers of one edge, whose failures each edge renders
//!   in its own form (the JSON envelope, or an HTML page).
//!
//! Architecture Invariant: `routes` never names `pages`, and `pages` never names `routes`;
//! the router that joins them is assembled in `router.rs`.

mod guard;
mod ids;
mod import;
mod photo;
mod upload;

pub(crate) use guard::{guarded, guarded_api};
pub(crate) use ids::PathId;
pub(crate) use import::{BODY_WITHOUT_DEADLINE, receive_import};
pub(crate) use photo::serve_photo;
pub(crate) use upload::receive_upload;
