//! The demo records (the seed system's customers, products and orders), so that the seed's
//! demo tickets work here: `ticketflow-api demo-data` loads them, and so does the embedded
//! default into an empty database. Dates are relative to the load.

use chrono::{DateTime, Duration, Utc};

use crate::commerce::{Address, Customer, Order, OrderItem, OrderStatus, Product};
use crate::money::Money;

/// A demo customer: id, e-mail, name, phone, tier, lifetime value in cents, and address (line,
/// city, region, postal code, country).
type DemoCustomer = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    [&'static str; 5],
);

const CUSTOMERS: &[DemoCustomer] = &[
    (
        "cust_john_doe",
        "john.doe@email.com",
        "John Doe",
        "+1-555-0101",
        "premium",
        125_000,
        ["123 Main St", "San Francisco", "CA", "94105", "USA"],
    ),
    (
        "cust_jane_smith",
        "jane.smith@email.com",
        "Jane Smith",
        "+1-555-0102",
        "vip",
        542_000,
        ["48 Oak Avenue", "Austin", "TX", "78701", "USA"],
    ),
    (
        "cust_bob_wilson",
        "bob.wilson@email.com",
        "Bob Wilson",
        "+1-555-0103",
        "standard",
        8_999,
        ["9 Pine Road", "Denver", "CO", "80202", "USA"],
    ),
    (
        "cust_alice_jones",
        "alice.jones@email.com",
        "Alice Jones",
        "+1-555-0104",
        "premium",
        89_000,
        ["210 Lake Shore Drive", "Chicago", "IL", "60611", "USA"],
    ),
    (
        "cust_charlie_brown",
        "charlie.brown@email.com",
        "Charlie Brown",
        "+1-555-0105",
        "standard",
        14_999,
        ["77 Elm Street", "Boston", "MA", "02108", "USA"],
    ),
];

/// (id, name, price in cents, category, description).
const PRODUCTS: &[(&str, &str, i64, &str, &str)] = &[
    (
        "prod_wh1000",
        "Wireless Headphones Pro",
        14_999,
        "electronics",
        "Premium noise-canceling wireless headphones with 30-hour battery life",
    ),
    (
        "prod_kb500",
        "Mechanical Keyboard RGB",
        8_999,
        "electronics",
        "Mechanical gaming keyboard with RGB lighting and Cherry MX switches",
    ),
    (
        "prod_ms300",
        "Ergonomic Mouse",
        4_999,
        "electronics",
        "Ergonomic wireless mouse with adjustable DPI",
    ),
    (
        "prod_mon27",
        "27-inch 4K Monitor",
        39_999,
        "electronics",
        "Ultra HD 4K monitor with HDR support",
    ),
    (
        "prod_cam01",
        "HD Webcam 1080p",
        7_999,
        "electronics",
        "Full HD webcam with built-in microphone",
    ),
    (
        "prod_hub01",
        "USB-C Hub 7-in-1",
        4_599,
        "accessories",
        "USB-C hub with HDMI, USB-A, SD card reader",
    ),
    (
        "prod_stand",
        "Laptop Stand Aluminum",
        3_599,
        "accessories",
        "Adjustable aluminum laptop stand for better ergonomics",
    ),
    (
        "prod_pad01",
        "Mouse Pad XL",
        1_999,
        "accessories",
        "Extra-large desk pad with stitched edges",
    ),
    (
        "prod_cable",
        "Charging Cable 3-Pack",
        2_499,
        "accessories",
        "Braided USB-C cables in 3ft, 6ft, and 10ft lengths",
    ),
    (
        "prod_bag01",
        "Laptop Backpack",
        5_999,
        "accessories",
        "Water-resistant backpack with padded laptop compartment",
    ),
];

/// An order: id, customer, status, products (one of each), days ago placed / shipped /
/// delivered, carrier.
struct DemoOrder {
    id: &'static str,
    customer: &'static str,
    status: OrderStatus,
    products: &'static [&'static str],
    placed: i64,
    shipped: Option<i64>,
    delivered: Option<i64>,
    carrier: Option<&'static str>,
}

const ORDERS: &[DemoOrder] = &[
    DemoOrder {
        id: "ord_12345",
        customer: "cust_john_doe",
        status: OrderStatus::Shipped,
        products: &["prod_wh1000", "prod_hub01"],
        placed: 3,
        shipped: Some(1),
        delivered: None,
        carrier: Some("UPS"),
    },
    DemoOrder {
        id: "ord_11111",
        customer: "cust_john_doe",
        status: OrderStatus::Delivered,
        products: &["prod_kb500"],
        placed: 15,
        shipped: Some(12),
        delivered: Some(10),
        carrier: Some("FedEx"),
    },
    DemoOrder {
        id: "ord_22222",
        customer: "cust_jane_smith",
        status: OrderStatus::Processing,
        products: &["prod_mon27", "prod_stand"],
        placed: 1,
        shipped: None,
        delivered: None,
        carrier: None,
    },
    DemoOrder {
        id: "ord_33333",
        customer: "cust_bob_wilson",
        status: OrderStatus::Pending,
        products: &["prod_ms300", "prod_pad01", "prod_cable"],
        placed: 0,
        shipped: None,
        delivered: None,
        carrier: None,
    },
    DemoOrder {
        id: "ord_44444",
        customer: "cust_alice_jones",
        status: OrderStatus::Shipped,
        products: &["prod_cam01", "prod_bag01"],
        placed: 5,
        shipped: Some(2),
        delivered: None,
        carrier: Some("USPS"),
    },
    DemoOrder {
        id: "ord_99999",
        customer: "cust_charlie_brown",
        status: OrderStatus::Refunded,
        products: &["prod_wh1000"],
        placed: 20,
        shipped: Some(17),
        delivered: Some(14),
        carrier: Some("UPS"),
    },
];

/// The demo customers.
pub fn customers() -> Vec<Customer> {
    CUSTOMERS
        .iter()
        .map(
            |&(id, email, name, phone, tier, cents, [line, city, region, postal_code, country])| Customer {
                id: id.into(),
                email: email.into(),
                name: name.into(),
                phone: Some(phone.into()),
                tier: tier.into(),
                lifetime_value: Money::from_cents(cents),
                address: Address {
                    line: line.into(),
                    city: city.into(),
                    region: region.into(),
                    postal_code: postal_code.into(),
                    country: country.into(),
                },
            },
        )
        .collect()
}

/// The demo products (all in stock).
pub fn products() -> Vec<Product> {
    PRODUCTS
        .iter()
        .map(|&(id, name, cents, category, description)| Product {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            price: Money::from_cents(cents),
            category: category.into(),
            in_stock: true,
        })
        .collect()
}

/// The carrier's tracking number for a shipped order: the carrier's prefix and nine digits made
/// from the order's number.
fn tracking_number(carrier: &str, order_id: &str) -> String {
    let number: u64 = order_id.trim_start_matches("ord_").parse().unwrap_or(0);
    let digits = format!("{:09}", number.wrapping_mul(7_919) % 1_000_000_000);
    let prefix = match carrier {
        "UPS" => "1Z999AA1",
        "FedEx" => "7489",
        _ => "9400111899",
    };
    format!("{prefix}{digits}")
}

/// The demo orders, dated relative to `now`: shipped and delivered orders have a tracking
/// number and an estimated delivery 7 days after they were placed; `ord_99999` was refunded in
/// full before the data was loaded.
pub fn orders(now: DateTime<Utc>) -> Vec<Order> {
    let products = products();
    let customers = customers();
    let ago = |days: i64| now - Duration::days(days);
    ORDERS
        .iter()
        .map(|o| {
            let items: Vec<OrderItem> = o
                .products
                .iter()
                .filter_map(|id| products.iter().find(|p| p.id == *id))
                .map(|p| OrderItem {
                    product_id: p.id.clone(),
                    name: p.name.clone(),
                    quantity: 1,
                    unit_price: p.price,
                })
                .collect();
            let total = Money::from_cents(items.iter().map(|i| i.unit_price.cents() * i64::from(i.quantity)).sum());
            let placed_at = ago(o.placed);
            let tracked = o.shipped.is_some();
            Order {
                id: o.id.into(),
                customer_id: o.customer.into(),
                status: o.status,
                items,
                total,
                refunded: if o.status == OrderStatus::Refunded {
                    total
                } else {
                    Money::ZERO
                },
                carrier: o.carrier.map(Into::into),
                tracking_number: o
                    .carrier
                    .filter(|_| tracked)
                    .map(|carrier| tracking_number(carrier, o.id)),
                placed_at,
                shipped_at: o.shipped.map(ago),
                delivered_at: o.delivered.map(ago),
                estimated_delivery: tracked.then(|| placed_at + Duration::days(7)),
                ship_to: customers
                    .iter()
                    .find(|c| c.id == o.customer)
                    .map(|c| c.address.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_data_is_the_seeds() {
        assert_eq!(customers().len(), 5);
        assert_eq!(products().len(), 10);
        let orders = orders(Utc::now());
        let total = |id: &str| orders.iter().find(|o| o.id == id).unwrap().total.cents();
        assert_eq!(
            [
                total("ord_12345"),
                total("ord_11111"),
                total("ord_22222"),
                total("ord_33333"),
                total("ord_44444"),
                total("ord_99999")
            ],
            [19_598, 8_999, 43_598, 9_497, 13_998, 14_999]
        );
        let refunded = orders.iter().find(|o| o.id == "ord_99999").unwrap();
        assert_eq!(refunded.refundable(), Money::ZERO);
        let shipped = orders.iter().find(|o| o.id == "ord_12345").unwrap();
        assert!(shipped.tracking_number.as_deref().unwrap().starts_with("1Z999AA1"));
        assert_eq!(shipped.tracking_number.as_deref().unwrap().len(), 17);
        assert_eq!(shipped.ship_to.city, "San Francisco");
        assert!(
            orders
                .iter()
                .find(|o| o.id == "ord_22222")
                .unwrap()
                .tracking_number
                .is_none()
        );
    }
}
