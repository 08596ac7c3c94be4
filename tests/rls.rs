//! Row-level security, proved in SQL as the application's own role (SEC-01, SEC-03, SEC-04): the
//! app does not own the tables and cannot bypass RLS; a statement without a tenant context is an
//! error, never an empty result, also on a pooled connection that served another tenant before;
//! with a tenant set, another tenant's rows are invisible in every tenant table, and writes into
//! another tenant are refused.

use harness::infra::env_for_test;
use platform::domain::Plan;
use platform::domain::TenantId;
use platform::store::contract::order;
use platform::store::model::{AuditEntry, Tenant, Usage};
use platform::store::postgres::PgStore;
use platform::store::Store;
use sqlx::Connection;

const TENANT_TABLES: [&str; 15] = [
    "tenants",
    "users",
    "api_keys",
    "products",
    "orders",
    "payments",
    "leads",
    "tickets",
    "outbox_messages",
    "documents",
    "runs",
    "audit_log",
    "usage_counters",
    "run_summaries",
    "processed_events",
];

#[tokio::test]
async fn the_application_role_owns_nothing_and_cannot_bypass_rls() {
    let Some(env) = env_for_test("rls::the_application_role_owns_nothing").await else {
        return;
    };
    let store = PgStore::connect(&env.database_url, 2).await.unwrap();
    let (user, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(user, "aiaas_app");
    assert!(!superuser && !bypass, "the app role must not bypass RLS");
    for table in TENANT_TABLES {
        let (owner, enabled, forced): (String, bool, bool) = sqlx::query_as(
            "SELECT pg_get_userbyid(relowner)::text, relrowsecurity, relforcerowsecurity \
             FROM pg_class WHERE relname = $1 AND relnamespace = 'public'::regnamespace",
        )
        .bind(table)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_ne!(owner, user, "{table} is owned by the application role");
        assert_eq!(owner, "aiaas_owner", "{table}");
        assert!(
            enabled && forced,
            "{table}: RLS enabled {enabled}, forced {forced}"
        );
        let (policies,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_policies WHERE tablename = $1 \
             AND qual LIKE '%app_current_tenant()%' AND with_check LIKE '%app_current_tenant()%'",
        )
        .bind(table)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(
            policies, 1,
            "{table} needs one policy with USING and WITH CHECK"
        );
    }
    store.pool().close().await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_query_without_a_tenant_context_is_an_error_not_an_empty_result() {
    let Some(env) = env_for_test("rls::a_query_without_a_tenant_context").await else {
        return;
    };
    let store = PgStore::connect(&env.database_url, 1).await.unwrap();
    store.put_order(&order("acme", "ORD-1")).await.unwrap();
    // The pool has one connection: it has just served acme inside a transaction.
    for table in TENANT_TABLES {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .execute(store.pool())
            .await
            .expect_err(table);
        let db = err.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("42501"), "{table}: {db}");
        assert!(
            db.message()
                .contains("tenant context required by RLS policy"),
            "{table}: {db}"
        );
    }
    // An empty tenant is no tenant either.
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', '', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(sqlx::query("SELECT * FROM orders")
        .fetch_all(&mut *tx)
        .await
        .is_err());
    drop(tx);
    store.pool().close().await;
    env.cleanup().await;
}

#[tokio::test]
async fn another_tenants_rows_are_invisible_and_unwritable() {
    let Some(env) = env_for_test("rls::another_tenants_rows").await else {
        return;
    };
    let store = PgStore::connect(&env.database_url, 2).await.unwrap();
    store.put_order(&order("acme", "ORD-A")).await.unwrap();
    store.put_order(&order("globex", "ORD-G")).await.unwrap();
    // globex also has rows in the tables the policy must hide.
    let globex = TenantId::parse("globex").unwrap();
    store
        .put_tenant(&Tenant {
            id: globex.clone(),
            name: "Globex".into(),
            plan: Plan::Pro,
            system_prompt: "secret".into(),
            limits: None,
            allowed_tools: None,
        })
        .await
        .unwrap();
    store
        .add_usage(
            &globex,
            "2026-01",
            uuid::Uuid::from_u128(1),
            &Usage::default(),
        )
        .await
        .unwrap();
    store
        .append_audit(&AuditEntry {
            tenant: globex.clone(),
            at: chrono::Utc::now(),
            actor: "x".into(),
            action: "read".into(),
            resource: "order".into(),
            outcome: "allowed".into(),
            detail: String::new(),
        })
        .await
        .unwrap();
    let mut c = store.pool().acquire().await.unwrap();
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'acme', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (setting,): (String,) = sqlx::query_as("SELECT current_setting('app.tenant_id')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(setting, "acme");
    for table in TENANT_TABLES {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id <> 'acme'"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table} shows another tenant's rows");
    }
    let (mine,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(mine, 1);
    // Updates and deletes of globex's rows touch nothing.
    let updated = sqlx::query("UPDATE orders SET body = '{}' WHERE order_id = 'ORD-G'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("DELETE FROM orders WHERE tenant_id = 'globex'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    tx.commit().await.unwrap();
    // Writing a row for globex while acting as acme is refused by WITH CHECK.
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'acme', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO orders (tenant_id, order_id, body) VALUES ('globex', 'ORD-X', '{}')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    let db = err.as_database_error().unwrap();
    assert_eq!(db.code().as_deref(), Some("42501"), "{db}");
    drop(tx);
    drop(c);
    // globex's order is intact.
    let g = store
        .order(&TenantId::parse("globex").unwrap(), "ORD-G")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.status, "processing");
    store.pool().close().await;
    env.cleanup().await;
}
