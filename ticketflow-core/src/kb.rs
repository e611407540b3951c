//! The knowledge base: help articles searched with BM25 (the `bm25` crate) at passage level.

use std::collections::HashMap;
use std::path::Path;

use bm25::{Document, Language, SearchEngine, SearchEngineBuilder};

use crate::{ArticleHit, Category};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/kb_bundle.rs"));
}

/// Shorter paragraphs are joined to the next one to make a passage.
const MIN_PASSAGE_WORDS: usize = 25;

/// A help article.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Stable id (front matter `id`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Category.
    pub category: Category,
    /// Search keywords.
    pub keywords: Vec<String>,
    /// The Markdown body after the front matter.
    pub body: String,
}

/// Why a knowledge base could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// An article file is malformed.
    #[error("article `{file}`: {problem}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// The directory could not be read.
    #[error("cannot read knowledge base directory `{dir}`: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// No articles.
    #[error("the knowledge base is empty")]
    Empty,
}

/// A searchable set of articles.
pub struct KnowledgeBase {
    articles: Vec<Article>,
    /// Passages as (article index, text); the search engine's document ids index this.
    passages: Vec<(usize, String)>,
    engine: SearchEngine<usize>,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("articles", &self.articles.len())
            .field("passages", &self.passages.len())
            .finish()
    }
}

impl KnowledgeBase {
    /// The articles bundled into the library at build time.
    pub fn bundled() -> Result<Self, KbError> {
        let articles = bundle::BUNDLED
            .iter()
            .map(|(file, text)| Article::parse(file, text))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(articles)
    }

    /// Every `*.md` file in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, KbError> {
        let io = |source| KbError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        files.sort();
        let mut articles = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            articles.push(Article::parse(&path.display().to_string(), &text)?);
        }
        Self::new(articles)
    }

    /// Indexes `articles`.
    pub fn new(articles: Vec<Article>) -> Result<Self, KbError> {
        if articles.is_empty() {
            return Err(KbError::Empty);
        }
        let mut passages = Vec::new();
        for (i, article) in articles.iter().enumerate() {
            for passage in article.passages() {
                passages.push((i, passage));
            }
        }
        // Each passage is indexed with its article's title and keywords, so that a passage is
        // found by what the article is about as well as by its own words.
        let documents = passages.iter().enumerate().map(|(id, (i, text))| {
            let a = &articles[*i];
            Document::new(id, format!("{} {} {}", a.title, a.keywords.join(" "), text))
        });
        let engine = SearchEngineBuilder::<usize>::with_documents(Language::English, documents).build();
        Ok(Self {
            articles,
            passages,
            engine,
        })
    }

    /// All articles.
    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    /// The `limit` best articles for `query`, each with its best passage. Articles in
    /// `category` (when given) get a 25% boost: the classifier's opinion breaks near-ties.
    pub fn search(&self, query: &str, category: Option<Category>, limit: usize) -> Vec<ArticleHit> {
        let mut best: HashMap<usize, (f32, usize)> = HashMap::new();
        for hit in self.engine.search(query, limit * 8) {
            let (article, _) = self.passages[hit.document.id];
            let boost = if Some(self.articles[article].category) == category {
                1.25
            } else {
                1.0
            };
            let score = hit.score * boost;
            let entry = best.entry(article).or_insert((score, hit.document.id));
            if score > entry.0 {
                *entry = (score, hit.document.id);
            }
        }
        let mut hits: Vec<_> = best.into_iter().collect();
        hits.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.0.cmp(&b.0)));
        hits.into_iter()
            .take(limit)
            .map(|(article, (score, passage))| {
                let a = &self.articles[article];
                ArticleHit {
                    id: a.id.clone(),
                    title: a.title.clone(),
                    category: a.category,
                    score,
                    passage: self.passages[passage].1.clone(),
                }
            })
            .collect()
    }
}

impl Article {
    /// Parses a Markdown article with `key: value` front matter (id, title, category, keywords).
    pub fn parse(file: &str, text: &str) -> Result<Self, KbError> {
        let malformed = |problem: &str| KbError::Malformed {
            file: file.to_owned(),
            problem: problem.to_owned(),
        };
        let rest = text
            .trim_start()
            .strip_prefix("---")
            .ok_or_else(|| malformed("no front matter"))?;
        let (front, body) = rest
            .split_once("\n---")
            .ok_or_else(|| malformed("unterminated front matter"))?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for line in front.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| malformed("front matter line without `:`"))?;
            fields.insert(key.trim(), value.trim());
        }
        let field = |name: &str| {
            fields
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
                .ok_or_else(|| malformed(&format!("missing `{name}`")))
        };
        let category = match field("category")?.as_str() {
            "billing" => Category::Billing,
            "technical" => Category::Technical,
            "account" => Category::Account,
            "general" => Category::General,
            other => return Err(malformed(&format!("unknown category `{other}`"))),
        };
        Ok(Self {
            id: field("id")?,
            title: field("title")?,
            category,
            keywords: fields
                .get("keywords")
                .map(|k| {
                    k.split(',')
                        .map(|w| w.trim().to_owned())
                        .filter(|w| !w.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            body: body.trim_start_matches('-').trim().to_owned(),
        })
    }

    /// The body cut into passages of at least [`MIN_PASSAGE_WORDS`] words: paragraphs and lists,
    /// short ones joined to the next, each led by the heading above it. (BM25 favours short
    /// documents, so a one-line introduction would otherwise win over the paragraph that helps.)
    fn passages(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut heading = String::new();
        let mut current = String::new();
        for block in self.body.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
            if let Some(h) = block.strip_prefix('#') {
                let h = h.trim_start_matches('#').trim();
                if current.is_empty() {
                    heading = h.to_owned();
                }
                continue;
            }
            if current.is_empty() && !heading.is_empty() && heading != self.title {
                current = format!("{heading}: ");
            } else if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(&block.replace("**", ""));
            if current.split_whitespace().count() >= MIN_PASSAGE_WORDS {
                out.push(std::mem::take(&mut current));
            }
        }
        // A short tail belongs with the passage before it.
        match out.last_mut() {
            Some(last) if !current.is_empty() => {
                last.push('\n');
                last.push_str(&current);
            }
            _ if !current.is_empty() => out.push(current),
            _ => {}
        }
        if out.is_empty() {
            out.push(self.title.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_articles_load_and_cover_every_category() {
        let kb = KnowledgeBase::bundled().unwrap();
        assert!(kb.articles().len() >= 30);
        for category in Category::ALL {
            assert!(
                kb.articles().iter().filter(|a| a.category == category).count() >= 7,
                "{category}"
            );
        }
    }

    #[test]
    fn search_finds_the_article_a_ticket_is_about() {
        let kb = KnowledgeBase::bundled().unwrap();
        let hits = kb.search(
            "I was charged twice this month, two identical charges on my card",
            None,
            3,
        );
        assert_eq!(hits[0].id, "billing-duplicate-charges", "{hits:#?}");
        assert!(hits[0].score > 0.0 && !hits[0].passage.is_empty());
        let hits = kb.search(
            "forgot my password, the reset email never arrives",
            Some(Category::Account),
            3,
        );
        assert_eq!(hits[0].id, "account-password-reset", "{hits:#?}");
    }

    #[test]
    fn malformed_articles_are_named() {
        let err = Article::parse("x.md", "no front matter").unwrap_err();
        assert!(err.to_string().contains("x.md"));
        let err = Article::parse("y.md", "---\nid: a\ntitle: b\ncategory: nonsense\n---\nbody").unwrap_err();
        assert!(err.to_string().contains("unknown category"));
    }
}
