//! The OpenAPI 3.1 document, generated from the handlers' annotations and the DTO types.

use super::dto::*;
use super::error::{Code, ErrorBody, ErrorEnvelope, FieldError};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AI customer-support platform", version = "1.0.0",
         description = "The reference platform's public API (API.md). Errors use one envelope: {error: {code, message, details, request_id}}."),
    paths(
        super::chat::message, super::workflows::execute, super::workflows::list, super::workflows::run, super::workflows::cancel_run, super::workflows::versions, super::operator::record,
        super::orders::create, super::orders::get_order, super::orders::cancel, super::orders::products,
        super::support::lead, super::support::ticket,
        super::rag::create_document, super::rag::patch_document, super::rag::query,
        super::rag::get_document, super::rag::list_documents, super::rag::reindex, super::rag::document_access, super::realtime::chat,
        super::admin::login, super::admin::usage, super::admin::analytics,
        super::support::get_lead, super::support::get_ticket, super::admin::outbox, super::admin::audit_log,
        super::operator::provision, super::operator::fault, super::operator::clock, super::operator::events,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, FieldError, Code, ChatRequest, ChatResponse, ExecuteRequest, ExecuteResponse,
        OrderRequest, LeadRequest, LeadResponse, TicketRequest, TicketResponse, DocumentCreate, DocumentPatch, DocumentView, DocumentList, ReindexRequest, ReindexResponse, AccessView,
        crate::rag::index::IndexEntry, crate::rag::index::Sensitivity,
        RagQuery, RagAnswer, super::operator::TenantSeed, super::operator::Provisioned, super::operator::FaultRequest, LoginRequest, TokenResponse, UsageResponse, AnalyticsSummary, ProductList, WorkflowList, WorkflowVersion, Versions)),
    modifiers(&Security)
)]
pub struct ApiDoc;
