//! Customers, products and orders in PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, SqlStr};

use super::PgStore;
use super::rows::{CUSTOMER_COLUMNS, CustomerRow, ORDER_COLUMNS, OrderItemRow, OrderRow, PRODUCT_COLUMNS, ProductRow};
use super::sql::statement;
use crate::commerce::{Customer, Order, Product, ProductQuery};
use crate::store::{CommerceStore, DemoLoaded, StoreError};

/// The support-data statements.
#[derive(Debug)]
pub(super) struct CommerceSql {
    customer: SqlStr,
    customer_orders: SqlStr,
    order: SqlStr,
    items: SqlStr,
    product: SqlStr,
    products_named: SqlStr,
    insert_customer: SqlStr,
    insert_product: SqlStr,
    insert_order: SqlStr,
    insert_item: SqlStr,
    any_customer: SqlStr,
}

impl CommerceSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            customer: statement(
                schema,
                &format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM {{schema}}.customers \
                     WHERE lower(id) = lower($1) OR lower(email) = lower($1) ORDER BY id LIMIT 1"
                ),
            ),
            customer_orders: statement(
                schema,
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM {{schema}}.orders WHERE customer_id = $1 \
                     ORDER BY placed_at DESC, id LIMIT $2"
                ),
            ),
            order: statement(
                schema,
                &format!("SELECT {ORDER_COLUMNS} FROM {{schema}}.orders WHERE lower(id) = lower($1)"),
            ),
            items: statement(
                schema,
                "SELECT i.order_id, i.product_id, p.name, i.quantity, i.unit_price_cents \
                 FROM {schema}.order_items i JOIN {schema}.products p ON p.id = i.product_id \
                 WHERE i.order_id = ANY($1) ORDER BY i.order_id, i.product_id",
            ),
            product: statement(
                schema,
                &format!("SELECT {PRODUCT_COLUMNS} FROM {{schema}}.products WHERE lower(id) = lower($1)"),
            ),
            // The name is matched literally: LIKE's metacharacters in it are escaped.
            products_named: statement(
                schema,
                &format!(
                    "SELECT {PRODUCT_COLUMNS} FROM {{schema}}.products \
                     WHERE lower(name) LIKE '%' || replace(replace(replace(lower($1), '\\', '\\\\'), '%', '\\%'), '_', '\\_') \
                         || '%' ESCAPE '\\' ORDER BY name, id LIMIT $2"
                ),
            ),
            insert_customer: statement(
                schema,
                "INSERT INTO {schema}.customers (id, email, name, phone, tier, lifetime_value_cents, address_line, \
                     city, region, postal_code, country) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT DO NOTHING",
            ),
            insert_product: statement(
                schema,
                "INSERT INTO {schema}.products (id, name, description, price_cents, category, in_stock) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            ),
            insert_order: statement(
                schema,
                "INSERT INTO {schema}.orders (id, customer_id, status, total_cents, refunded_cents, carrier, \
                     tracking_number, placed_at, shipped_at, delivered_at, estimated_delivery, ship_address_line, \
                     ship_city, ship_region, ship_postal_code, ship_country) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING",
            ),
            insert_item: statement(
                schema,
                "INSERT INTO {schema}.order_items (order_id, product_id, quantity, unit_price_cents) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            ),
            any_customer: statement(schema, "SELECT EXISTS (SELECT 1 FROM {schema}.customers)"),
        }
    }
}

impl PgStore {
    /// `rows` as orders, with their items.
    async fn with_items(&self, rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Order>, StoreError> {
        let rows: Vec<OrderRow> = rows.iter().map(OrderRow::from_row).collect::<Result<_, _>>()?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let items = self
            .db
            .fetch_all(sqlx::query(self.sql.commerce.items.clone()).bind(&ids))
            .await?;
        let items: Vec<OrderItemRow> = items.iter().map(OrderItemRow::from_row).collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|row| {
                let mine = items.iter().filter(|i| i.order_id == row.id).cloned().collect();
                row.into_order(mine)
            })
            .collect()
    }
}

#[async_trait]
impl CommerceStore for PgStore {
    async fn customer(&self, reference: &str) -> Result<Option<Customer>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.commerce.customer.clone()).bind(reference.trim()))
            .await?;
        Ok(row.map(|r| CustomerRow::from_row(&r).map(Customer::from)).transpose()?)
    }

    async fn customer_orders(&self, customer_id: &str, limit: usize) -> Result<Vec<Order>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.commerce.customer_orders.clone())
                    .bind(customer_id)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await?;
        self.with_items(rows).await
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.commerce.order.clone()).bind(order_id))
            .await?;
        Ok(self.with_items(row.into_iter().collect()).await?.pop())
    }

    async fn products(&self, query: &ProductQuery) -> Result<Vec<Product>, StoreError> {
        let rows = match (&query.id, &query.name_contains) {
            (Some(id), _) => {
                self.db
                    .fetch_all(sqlx::query(self.sql.commerce.product.clone()).bind(id))
                    .await?
            }
            (None, Some(name)) => {
                self.db
                    .fetch_all(
                        sqlx::query(self.sql.commerce.products_named.clone())
                            .bind(name)
                            .bind(i64::try_from(query.limit).unwrap_or(i64::MAX)),
                    )
                    .await?
            }
            (None, None) => Vec::new(),
        };
        Ok(rows
            .iter()
            .map(|r| ProductRow::from_row(r).map(Product::from))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .take(query.limit.max(1))
            .collect())
    }

    async fn load_demo_data(&self, now: DateTime<Utc>) -> Result<DemoLoaded, StoreError> {
        let mut loaded = DemoLoaded::default();
        let mut tx = self.db.begin().await?;
        let persistent = self.db.persistent();
        for c in crate::demo::customers() {
            let done = sqlx::query(self.sql.commerce.insert_customer.clone())
                .persistent(persistent)
                .bind(&c.id)
                .bind(&c.email)
                .bind(&c.name)
                .bind(&c.phone)
                .bind(&c.tier)
                .bind(c.lifetime_value.cents())
                .bind(&c.address.line)
                .bind(&c.address.city)
                .bind(&c.address.region)
                .bind(&c.address.postal_code)
                .bind(&c.address.country)
                .execute(&mut *tx)
                .await?;
            loaded.customers += done.rows_affected();
        }
        for p in crate::demo::products() {
            let done = sqlx::query(self.sql.commerce.insert_product.clone())
                .persistent(persistent)
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.description)
                .bind(p.price.cents())
                .bind(&p.category)
                .bind(p.in_stock)
                .execute(&mut *tx)
                .await?;
            loaded.products += done.rows_affected();
        }
        for o in crate::demo::orders(now) {
            let done = sqlx::query(self.sql.commerce.insert_order.clone())
                .persistent(persistent)
                .bind(&o.id)
                .bind(&o.customer_id)
                .bind(o.status.as_str())
                .bind(o.total.cents())
                .bind(o.refunded.cents())
                .bind(&o.carrier)
                .bind(&o.tracking_number)
                .bind(o.placed_at)
                .bind(o.shipped_at)
                .bind(o.delivered_at)
                .bind(o.estimated_delivery)
                .bind(&o.ship_to.line)
                .bind(&o.ship_to.city)
                .bind(&o.ship_to.region)
                .bind(&o.ship_to.postal_code)
                .bind(&o.ship_to.country)
                .execute(&mut *tx)
                .await?;
            loaded.orders += done.rows_affected();
            if done.rows_affected() == 1 {
                for item in &o.items {
                    sqlx::query(self.sql.commerce.insert_item.clone())
                        .persistent(persistent)
                        .bind(&o.id)
                        .bind(&item.product_id)
                        .bind(i32::try_from(item.quantity).unwrap_or(i32::MAX))
                        .bind(item.unit_price.cents())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(loaded)
    }

    async fn has_no_customers(&self) -> Result<bool, StoreError> {
        let row = self
            .db
            .fetch_one(sqlx::query(self.sql.commerce.any_customer.clone()))
            .await?;
        let any: bool = sqlx::Row::try_get(&row, 0)?;
        Ok(!any)
    }
}
