-- The platform's schema. Every tenant table carries `tenant_id`, has row-level security enabled AND
-- forced (so even the owner is filtered), and one policy that both filters reads (USING) and refuses
-- writes into another tenant (WITH CHECK). The policy reads the tenant through `app_current_tenant()`,
-- which raises when no tenant is set: a query without a tenant context is an error, never an empty
-- result. The application logs in as `aiaas_app`, which owns nothing; `aiaas_owner` owns the tables.
-- Migrations run as an administrator that may create roles.

DO $$
BEGIN
    CREATE ROLE aiaas_owner NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

DO $$
BEGIN
    CREATE ROLE aiaas_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE FUNCTION app_current_tenant() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t text := current_setting('app.tenant_id', true);
BEGIN
    IF t IS NULL OR t = '' THEN
        RAISE EXCEPTION 'tenant context required by RLS policy: app.tenant_id is not set'
            USING ERRCODE = '42501';
    END IF;
    RETURN t;
END $$;

-- Registries without RLS: they hold no tenant data, only what is needed before a tenant is known.
CREATE TABLE tenant_registry (tenant_id text PRIMARY KEY);
CREATE TABLE api_key_index (key_hash text PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE sequences (name text PRIMARY KEY, value bigint NOT NULL);

-- The event outbox spans tenants (one relay drains it); rows are events already published by the
-- platform itself, never read through the API.
CREATE TABLE event_outbox (
    seq bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    relayed_at timestamptz
);
CREATE INDEX event_outbox_pending ON event_outbox (seq) WHERE relayed_at IS NULL;

CREATE TABLE tenants (tenant_id text PRIMARY KEY, body jsonb NOT NULL);
CREATE TABLE users (
    tenant_id text NOT NULL, email text NOT NULL, user_id text NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (tenant_id, email)
);
CREATE TABLE api_keys (
    tenant_id text NOT NULL, key_hash text NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE TABLE products (
    tenant_id text NOT NULL, sku text NOT NULL, stock bigint NOT NULL CHECK (stock >= 0),
    body jsonb NOT NULL, PRIMARY KEY (tenant_id, sku)
);
CREATE TABLE orders (
    tenant_id text NOT NULL, order_id text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (tenant_id, order_id)
);
CREATE TABLE payments (
    tenant_id text NOT NULL, payment_id text NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (tenant_id, payment_id)
);
CREATE TABLE leads (
    tenant_id text NOT NULL, lead_id text NOT NULL, email text NOT NULL, status text NOT NULL,
    body jsonb NOT NULL, PRIMARY KEY (tenant_id, lead_id)
);
CREATE INDEX leads_by_email ON leads (tenant_id, email);
CREATE TABLE tickets (
    tenant_id text NOT NULL, ticket_id text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (tenant_id, ticket_id)
);
CREATE TABLE outbox_messages (
    seq bigserial NOT NULL, tenant_id text NOT NULL, message_id text NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE TABLE documents (
    tenant_id text NOT NULL, document_id uuid NOT NULL,
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 3),
    roles text[], expires_at timestamptz, body jsonb NOT NULL,
    PRIMARY KEY (tenant_id, document_id)
);
CREATE TABLE runs (
    tenant_id text NOT NULL, run_id uuid NOT NULL, body jsonb NOT NULL, PRIMARY KEY (tenant_id, run_id)
);
CREATE TABLE audit_log (
    seq bigserial PRIMARY KEY, tenant_id text NOT NULL, at timestamptz NOT NULL, outcome text NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, seq);
-- One row per tenant and billing period (`YYYY-MM`): quotas are monthly.
CREATE TABLE usage_counters (
    tenant_id text NOT NULL, period text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    requests bigint NOT NULL DEFAULT 0, tokens bigint NOT NULL DEFAULT 0,
    tool_calls bigint NOT NULL DEFAULT 0, cost_usd double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, period)
);
CREATE TABLE run_summaries (
    seq bigserial PRIMARY KEY, tenant_id text NOT NULL, body jsonb NOT NULL
);
-- What each idempotent consumer has already applied, so a redelivered event counts once.
CREATE TABLE processed_events (
    tenant_id text NOT NULL, consumer text NOT NULL, event_id uuid NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'users', 'api_keys', 'products', 'orders', 'payments',
        'leads', 'tickets', 'outbox_messages', 'documents', 'runs', 'audit_log', 'usage_counters',
        'run_summaries', 'processed_events']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant()) '
            'WITH CHECK (tenant_id = app_current_tenant())', t);
        EXECUTE format('ALTER TABLE %I OWNER TO aiaas_owner', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO aiaas_app', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['tenant_registry', 'api_key_index', 'sequences', 'event_outbox']
    LOOP
        EXECUTE format('ALTER TABLE %I OWNER TO aiaas_owner', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO aiaas_app', t);
    END LOOP;
END $$;

ALTER FUNCTION app_current_tenant() OWNER TO aiaas_owner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO aiaas_app;
GRANT USAGE ON SCHEMA public TO aiaas_app;
