//! `lookup_product`: catalogue products by id or by a piece of the name (five at most).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::commerce::{Product, ProductQuery};
use crate::store::ToolCall;

/// Which products.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductArgs {
    /// An exact product id (`prod_wh1000`).
    pub product_id: Option<String>,
    /// Words the product's name contains.
    pub name_search: Option<String>,
}

/// The products found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Products {
    /// The products.
    pub products: Vec<Product>,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct LookupProduct;

#[async_trait]
impl Tool for LookupProduct {
    type Args = ProductArgs;
    type Output = Products;

    const NAME: &'static str = "lookup_product";
    const DESCRIPTION: &'static str =
        "Find products by id or by name: name, description, price, category, whether in stock.";

    async fn check(&self, _env: &ToolEnv, _scope: &Scoped, args: &ProductArgs) -> Result<(), ToolError> {
        match (&args.product_id, &args.name_search) {
            (Some(id), _) => bounded("product_id", id, 64, true),
            (None, Some(name)) => bounded("name_search", name, 100, true),
            (None, None) => Err(ToolError::Invalid("give a product_id or a name_search".into())),
        }
    }

    async fn run(
        &self,
        env: &ToolEnv,
        _scope: &Scoped,
        _call: &ToolCall,
        args: ProductArgs,
    ) -> Result<Run<Products>, ToolError> {
        let query = ProductQuery {
            id: args.product_id.map(|id| id.trim().to_owned()),
            name_contains: args.name_search.map(|n| n.trim().to_owned()),
            limit: 5,
        };
        let products = env.commerce.products(&query).await?;
        if products.is_empty() {
            return Err(ToolError::NotFound("no product matches".into()));
        }
        Ok(Run::Done(Products { products }))
    }
}
