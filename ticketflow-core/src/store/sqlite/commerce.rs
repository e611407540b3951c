//! Customers, products and orders in SQLite (ids and e-mail addresses compare without case:
//! their columns are `COLLATE NOCASE`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder, Row};

use super::rows::{CUSTOMER_COLUMNS, CustomerRow, ORDER_COLUMNS, OrderItemRow, OrderRow, PRODUCT_COLUMNS, ProductRow};
use super::{SqliteStore, now, timestamp};
use crate::commerce::{Customer, Order, Product, ProductQuery};
use crate::store::{CommerceStore, DemoLoaded, StoreError};

impl SqliteStore {
    /// `rows` as orders, with their items.
    async fn with_items(&self, rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<Order>, StoreError> {
        let rows: Vec<OrderRow> = rows.iter().map(OrderRow::from_row).collect::<Result<_, _>>()?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::new(
            "SELECT i.order_id, i.product_id, p.name, i.quantity, i.unit_price_cents FROM order_items i \
             JOIN products p ON p.id = i.product_id WHERE i.order_id IN (",
        );
        let mut ids = query.separated(", ");
        for row in &rows {
            ids.push_bind(row.id.clone());
        }
        query.push(") ORDER BY i.order_id, i.product_id");
        let items = query.build().fetch_all(&self.read).await?;
        let items: Vec<OrderItemRow> = items.iter().map(OrderItemRow::from_row).collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|row| {
                let mine = items
                    .iter()
                    .filter(|i| i.order_id.eq_ignore_ascii_case(&row.id))
                    .cloned()
                    .collect();
                row.into_order(mine)
            })
            .collect()
    }
}

#[async_trait]
impl CommerceStore for SqliteStore {
    async fn customer(&self, reference: &str) -> Result<Option<Customer>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1 OR email = ?1 ORDER BY id LIMIT 1"
        )))
        .bind(reference.trim())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| CustomerRow::from_row(&r).map(Customer::from)).transpose()?)
    }

    async fn customer_orders(&self, customer_id: &str, limit: usize) -> Result<Vec<Order>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id = ? ORDER BY placed_at DESC, id LIMIT ?"
        )))
        .bind(customer_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        self.with_items(rows).await
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"
        )))
        .bind(order_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(self.with_items(row.into_iter().collect()).await?.pop())
    }

    async fn products(&self, query: &ProductQuery) -> Result<Vec<Product>, StoreError> {
        let limit = i64::try_from(query.limit.max(1)).unwrap_or(i64::MAX);
        let rows = match (&query.id, &query.name_contains) {
            (Some(id), _) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {PRODUCT_COLUMNS} FROM products WHERE lower(id) = lower(?) LIMIT ?"
                )))
                .bind(id)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
            // The name is matched literally: LIKE's metacharacters in it are escaped.
            (None, Some(name)) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {PRODUCT_COLUMNS} FROM products WHERE lower(name) LIKE '%' || \
                     replace(replace(replace(lower(?1), '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%' ESCAPE '\\' \
                     ORDER BY name, id LIMIT ?2"
                )))
                .bind(name)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
            (None, None) => Vec::new(),
        };
        Ok(rows
            .iter()
            .map(|r| ProductRow::from_row(r).map(Product::from))
            .collect::<Result<_, _>>()?)
    }

    async fn load_demo_data(&self, at: DateTime<Utc>) -> Result<DemoLoaded, StoreError> {
        let mut loaded = DemoLoaded::default();
        let stamp = now();
        let mut tx = self.begin().await?;
        for c in crate::demo::customers() {
            let done = sqlx::query(
                "INSERT INTO customers (id, email, name, phone, tier, lifetime_value_cents, address_line, city, \
                 region, postal_code, country, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
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
            .bind(&stamp)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
            loaded.customers += done.rows_affected();
        }
        for p in crate::demo::products() {
            let done = sqlx::query(
                "INSERT INTO products (id, name, description, price_cents, category, in_stock, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.description)
            .bind(p.price.cents())
            .bind(&p.category)
            .bind(p.in_stock)
            .bind(&stamp)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
            loaded.products += done.rows_affected();
        }
        for o in crate::demo::orders(at) {
            let done = sqlx::query(
                "INSERT INTO orders (id, customer_id, status, total_cents, refunded_cents, carrier, tracking_number, \
                 placed_at, shipped_at, delivered_at, estimated_delivery, ship_address_line, ship_city, ship_region, \
                 ship_postal_code, ship_country, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&o.id)
            .bind(&o.customer_id)
            .bind(o.status.as_str())
            .bind(o.total.cents())
            .bind(o.refunded.cents())
            .bind(&o.carrier)
            .bind(&o.tracking_number)
            .bind(timestamp(o.placed_at))
            .bind(o.shipped_at.map(timestamp))
            .bind(o.delivered_at.map(timestamp))
            .bind(o.estimated_delivery.map(timestamp))
            .bind(&o.ship_to.line)
            .bind(&o.ship_to.city)
            .bind(&o.ship_to.region)
            .bind(&o.ship_to.postal_code)
            .bind(&o.ship_to.country)
            .bind(&stamp)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
            loaded.orders += done.rows_affected();
            if done.rows_affected() == 1 {
                for item in &o.items {
                    sqlx::query(
                        "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents, created_at, \
                         updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(&o.id)
                    .bind(&item.product_id)
                    .bind(i64::from(item.quantity))
                    .bind(item.unit_price.cents())
                    .bind(&stamp)
                    .bind(&stamp)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(loaded)
    }

    async fn has_no_customers(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM customers)")
            .fetch_one(&self.read)
            .await?;
        let any: bool = row.try_get(0)?;
        Ok(!any)
    }
}
