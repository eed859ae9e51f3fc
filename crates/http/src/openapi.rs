//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{self, StatusBody};

#[derive(OpenApi)]
#[openapi(
    info(title = "Stride API", description = "Self-hostable fitness tracking."),
    paths(
        routes::healthz,
        routes::readyz,
        routes::metrics_text,
        routes::openapi_json,
        routes::register,
        routes::login,
        routes::logout,
        routes::get_me,
        routes::update_me,
        routes::get_my_stats,
        routes::get_user_stats,
        routes::create_activity,
        routes::list_activities,
        routes::get_activity,
        routes::update_activity,
        routes::delete_activity,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, StatusBody, RegisterRequest, LoginRequest, AuthResponse, UserBody, UpdateMeRequest,
        CreateActivityRequest, UpdateActivityRequest, ActivityBody, ActivityPageBody, StatsBody
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}
