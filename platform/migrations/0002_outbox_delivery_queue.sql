-- The delivery queue of outbox messages: which messages wait for the dispatcher, across tenants,
-- oldest first. It holds ids only (no tenant data), so, like `event_outbox`, it has no RLS: one
-- dispatcher reads it for every tenant, then reads each message under that tenant's context.
CREATE TABLE outbox_pending (
    seq bigserial NOT NULL,
    tenant_id text NOT NULL,
    message_id text NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX outbox_pending_order ON outbox_pending (seq);
ALTER TABLE outbox_pending OWNER TO aiaas_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_pending TO aiaas_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO aiaas_app;
