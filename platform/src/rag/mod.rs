//! Ranked retrieval with permissions. The store returns only the documents the caller's role may read
//! (the filter is in the query), and BM25 ranks those: top-k never sees a forbidden document, and the
//! term statistics never include another tenant's or a higher level's text.
//!
//! BM25 is written here rather than taken from a search engine crate: it is a few dozen lines over an
//! already-filtered candidate set, and the Postgres backend ranks with its own full-text search.

pub mod index;

use crate::domain::{Level, Role, TenantId};
use crate::guard::GuardConfig;
use crate::store::model::Document;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const K1: f64 = 1.2;
const B: f64 = 0.75;
const STOPWORDS: [&str; 30] = [
    "a", "an", "the", "is", "are", "was", "to", "of", "and", "or", "in", "on", "for", "my", "your",
    "i", "you", "we", "it", "do", "does", "can", "what", "how", "when", "where", "me", "with",
    "be", "about",
];

/// One retrieved document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    pub document_id: Uuid,
    pub title: String,
    pub level: Level,
    pub version: u32,
    /// BM25 score.
    pub score: f64,
    /// Share of the query's distinct terms that the document contains, in [0, 1].
    pub confidence: f64,
    pub snippet: String,
}

/// Lowercased alphanumeric terms without stopwords.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Ranks `docs` for `query` and keeps the `top_k` with a positive score.
pub fn rank(docs: &[Document], query: &str, top_k: usize) -> Vec<Hit> {
    let q: Vec<String> = {
        let mut seen = HashSet::new();
        terms(query)
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .collect()
    };
    if q.is_empty() || docs.is_empty() {
        return vec![];
    }
    let doc_terms: Vec<Vec<String>> = docs
        .iter()
        .map(|d| terms(&format!("{} {}", d.title, d.content)))
        .collect();
    let n = docs.len() as f64;
    let avg_len = doc_terms.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let df: HashMap<&str, usize> = q
        .iter()
        .map(|t| {
            (
                t.as_str(),
                doc_terms.iter().filter(|d| d.contains(t)).count(),
            )
        })
        .collect();
    let mut hits: Vec<Hit> = docs
        .iter()
        .zip(&doc_terms)
        .filter_map(|(d, dt)| {
            let len = dt.len() as f64;
            let mut score = 0.0;
            let mut matched = 0;
            for t in &q {
                let tf = dt.iter().filter(|w| *w == t).count() as f64;
                if tf == 0.0 {
                    continue;
                }
                matched += 1;
                let dfi = df[t.as_str()] as f64;
                let idf = ((n - dfi + 0.5) / (dfi + 0.5) + 1.0).ln();
                score += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len.max(1.0)));
            }
            (score > 0.0).then(|| Hit {
                document_id: d.document_id,
                title: d.title.clone(),
                level: d.level,
                version: d.version,
                score: (score * 1e6).round() / 1e6,
                confidence: matched as f64 / q.len() as f64,
                snippet: d.content.chars().take(280).collect(),
            })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.document_id.cmp(&b.document_id))
    });
    hits.truncate(top_k);
    hits
}

/// The hits as model context, one `[title] snippet` line each.
pub fn context(hits: &[Hit]) -> String {
    hits.iter()
        .map(|h| format!("[{}] {}", h.title, h.snippet))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one retrieval returns: the ranked hits, and the documents withheld because they carry
/// instructions for the model (indirect prompt injection).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retrieved {
    pub hits: Vec<Hit>,
    pub withheld: Vec<Uuid>,
}

/// Retrieves for one caller: the permission filter in the store query, then the guard's verdict on
/// each readable document (from its fresh index entry, else a scan of its text; one carrying
/// instructions never reaches ranking, the model or an answer),
/// then ranking and top-k; snippets are PII-redacted for every role but admin.
pub async fn search(
    store: &dyn Store,
    guard: &GuardConfig,
    tenant: &TenantId,
    role: Role,
    now: DateTime<Utc>,
    query: &str,
    top_k: usize,
) -> Result<Retrieved, StoreError> {
    let span = tracing::info_span!("rag.search", tenant_id = %tenant, role = role.as_str(), hits = tracing::field::Empty, withheld = tracing::field::Empty);
    let docs =
        tracing::Instrument::instrument(store.visible_documents(tenant, role, now), span.clone())
            .await?;
    // A fresh index entry holds the guard's verdict; a stale or missing one means a scan.
    let rules = index::rules(guard);
    let (withheld, docs): (Vec<Document>, Vec<Document>) = docs
        .into_iter()
        .partition(|d| index::withheld(d, guard, &rules, now));
    let mut hits = rank(&docs, query, top_k);
    // Personal data in a document is for administrators; every other role reads it redacted.
    if role != Role::Admin {
        for h in &mut hits {
            h.snippet = crate::guard::pii::redact(&h.snippet).0;
        }
    }
    // Only a withheld document the query would have found is worth reporting.
    let withheld: Vec<Uuid> = rank(&withheld, query, top_k)
        .into_iter()
        .map(|h| h.document_id)
        .collect();
    span.record("hits", hits.len());
    span.record("withheld", withheld.len());
    Ok(Retrieved { hits, withheld })
}

/// The audit row of one retrieval: who asked, which documents answered (`documents:<ids>`), and
/// the question, PII-redacted and cut at 200 characters.
pub async fn audit(
    store: &dyn Store,
    tenant: &TenantId,
    user: &str,
    now: DateTime<Utc>,
    hits: &[Hit],
    question: &str,
) -> Result<(), StoreError> {
    let ids: Vec<String> = hits.iter().map(|h| h.document_id.to_string()).collect();
    store
        .append_audit(&crate::store::model::AuditEntry {
            tenant: tenant.clone(),
            at: now,
            actor: user.to_string(),
            action: "rag.search".into(),
            resource: format!("documents:{}", ids.join(",")),
            outcome: "allowed".into(),
            detail: crate::guard::pii::redact(&question.chars().take(200).collect::<String>()).0,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u128, title: &str, content: &str) -> Document {
        Document {
            tenant: TenantId::parse("acme").unwrap(),
            document_id: Uuid::from_u128(n),
            title: title.into(),
            content: content.into(),
            level: Level::Public,
            roles: None,
            expires_at: None,
            version: 1,
            index: None,
        }
    }

    #[test]
    fn ranks_the_matching_document_first_with_full_confidence() {
        let docs = vec![
            doc(
                1,
                "Shipping",
                "Standard shipping takes 3 to 5 business days.",
            ),
            doc(
                2,
                "Returns",
                "You can return any item within 30 days for a refund.",
            ),
        ];
        let hits = rank(&docs, "How do I return an item for a refund?", 5);
        assert_eq!(hits[0].title, "Returns");
        assert_eq!(hits[0].confidence, 1.0);
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn no_terms_or_no_match_gives_nothing() {
        let docs = vec![doc(1, "Shipping", "days")];
        assert!(rank(&docs, "the and of", 5).is_empty());
        assert!(rank(&docs, "warranty", 5).is_empty());
    }

    #[test]
    fn top_k_bounds_the_result() {
        let docs: Vec<_> = (0..10).map(|i| doc(i, "Policy", "policy text")).collect();
        assert_eq!(rank(&docs, "policy", 3).len(), 3);
    }
}
