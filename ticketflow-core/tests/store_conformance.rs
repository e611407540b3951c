//! The exported store conformance suite (`ticketflow_core::testing::store`), run against real
//! PostgreSQL and real SQLite, each check on a fresh database; and one scenario run on both,
//! compared field by field.

mod postgres {
    ticketflow_core::store_conformance!(ticketflow_core::testing::database::postgres_store().await);
}

mod sqlite {
    ticketflow_core::store_conformance!(ticketflow_core::testing::database::sqlite_store().await);
}

#[tokio::test]
async fn both_backends_return_the_same_values() {
    use ticketflow_core::testing::{database, store};
    store::same_behaviour(database::postgres_store().await, database::sqlite_store().await).await;
}
