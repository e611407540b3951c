//! `query_help_articles`: the knowledge base's best articles for a search, a category, or
//! both (five at most).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::Category;
use crate::store::ToolCall;

/// The most articles one call returns.
const LIMIT: usize = 5;

/// What to look for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelpArticlesArgs {
    /// Only articles of this category.
    pub category: Option<Category>,
    /// Words to search titles and contents for.
    pub search_term: Option<String>,
}

/// One article found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArticleView {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its category.
    pub category: Category,
    /// The passage that matched best (or its opening).
    pub passage: String,
}

/// The articles found, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Articles {
    /// The articles.
    pub articles: Vec<ArticleView>,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryHelpArticles;

#[async_trait]
impl Tool for QueryHelpArticles {
    type Args = HelpArticlesArgs;
    type Output = Articles;

    const NAME: &'static str = "query_help_articles";
    const DESCRIPTION: &'static str =
        "Search the help-center articles by words and/or category; returns at most five, best first.";

    async fn check(&self, _env: &ToolEnv, _scope: &Scoped, args: &HelpArticlesArgs) -> Result<(), ToolError> {
        if let Some(term) = &args.search_term {
            bounded("search_term", term, 200, false)?;
        }
        if args.category.is_none() && args.search_term.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(ToolError::Invalid("give a search_term, a category, or both".into()));
        }
        Ok(())
    }

    async fn run(
        &self,
        env: &ToolEnv,
        _scope: &Scoped,
        _call: &ToolCall,
        args: HelpArticlesArgs,
    ) -> Result<Run<Articles>, ToolError> {
        let term = args.search_term.unwrap_or_default();
        let articles = if term.trim().is_empty() {
            env.kb
                .articles()
                .iter()
                .filter(|a| Some(a.category) == args.category)
                .take(LIMIT)
                .map(|a| ArticleView {
                    id: a.id.clone(),
                    title: a.title.clone(),
                    category: a.category,
                    passage: a.body.chars().take(400).collect(),
                })
                .collect()
        } else {
            env.kb
                .search(&term, args.category, LIMIT * 2)
                .into_iter()
                .filter(|hit| args.category.is_none_or(|c| c == hit.category))
                .take(LIMIT)
                .map(|hit| ArticleView {
                    id: hit.id,
                    title: hit.title,
                    category: hit.category,
                    passage: hit.passage,
                })
                .collect()
        };
        Ok(Run::Done(Articles { articles }))
    }
}
