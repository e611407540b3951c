//! Entities: order id (see `order_id`), product, issue type and urgency by weighted phrases.

use std::sync::LazyLock;

use super::order_id;
use super::text::{PhraseSet, normalize};
use crate::{Category, Entities, Urgency};

const PRODUCTS: &[(&str, &[&str])] = &[
    ("slack integration", &["slack"]),
    ("salesforce integration", &["salesforce"]),
    ("zapier integration", &["zapier"]),
    ("google drive integration", &["google drive", "gdrive"]),
    ("api", &["api", "webhook", "endpoint", "sdk", "api token", "api key"]),
    ("hub", &["hub"]),
    ("sensor", &["sensor"]),
    (
        "desktop app",
        &[
            "desktop",
            "windows app",
            "mac app",
            "macos app",
            "for windows",
            "for mac",
        ],
    ),
    (
        "mobile app",
        &[
            "mobile",
            "iphone",
            "ipad",
            "android",
            "ios",
            "phone app",
            "app on my phone",
        ],
    ),
    (
        "web app",
        &[
            "web app",
            "browser",
            "website",
            "dashboard",
            "chrome",
            "firefox",
            "safari",
            "edge ",
        ],
    ),
    (
        "subscription",
        &[
            "subscription",
            "plan",
            "renewal",
            "renew",
            "seats",
            "abonnement",
            "suscripcion",
            "assinatura",
            "abbonamento",
            "abo ",
            "invoice",
            "charged",
            "billed",
            "pro ",
            "starter",
            "business",
            "enterprise",
        ],
    ),
];

/// Weighted phrases, as the classifier uses them.
type Phrases = &'static [(&'static str, f32)];

const ISSUE_TYPES: &[(Category, &str, Phrases)] = &[
    (
        Category::Billing,
        "double_charge",
        &[
            ("twice", 3.0),
            ("double", 3.0),
            ("two charges", 3.0),
            ("duplicate", 3.0),
            ("charged 2", 3.0),
            ("dos veces", 3.0),
            ("deux fois", 3.0),
            ("doppelt", 3.0),
            ("due volte", 3.0),
            ("duas vezes", 3.0),
            ("times", 1.0),
        ],
    ),
    (
        Category::Billing,
        "refund_request",
        &[
            ("refund", 3.0),
            ("money back", 3.0),
            ("reimburs", 3.0),
            ("reembolso", 3.0),
            ("rembourse", 3.0),
            ("erstattung", 3.0),
            ("rimborso", 3.0),
            ("back on my card", 2.0),
        ],
    ),
    (
        Category::Billing,
        "invoice_request",
        &[
            ("invoice", 3.0),
            ("receipt", 3.0),
            ("factura", 3.0),
            ("facture", 3.0),
            ("rechnung", 3.0),
            ("fattura", 3.0),
            ("fatura", 3.0),
            ("vat", 2.0),
        ],
    ),
    (
        Category::Billing,
        "plan_change",
        &[
            ("upgrade", 3.0),
            ("downgrade", 3.0),
            ("switch to", 2.0),
            ("change plan", 3.0),
            ("change my plan", 3.0),
            ("yearly", 1.5),
            ("annual", 1.5),
            ("seats", 1.5),
            ("prorat", 2.0),
        ],
    ),
    (
        Category::Billing,
        "cancellation",
        &[
            ("cancel", 3.0),
            ("cancellation", 3.0),
            ("stop charging", 3.0),
            ("auto-renew", 2.0),
            ("cancelar", 3.0),
            ("annuler", 3.0),
            ("kundigen", 3.0),
            ("disdire", 3.0),
        ],
    ),
    (
        Category::Billing,
        "payment_failed",
        &[
            ("declined", 3.0),
            ("payment failed", 3.0),
            ("failed payment", 3.0),
            ("card expired", 3.0),
            ("expired", 2.0),
            ("3d secure", 3.0),
            ("update my card", 2.0),
            ("rechazad", 3.0),
            ("refuse", 2.0),
        ],
    ),
    (
        Category::Billing,
        "pricing_question",
        &[
            ("price", 2.0),
            ("pricing", 3.0),
            ("discount", 3.0),
            ("cost", 2.0),
            ("how much", 3.0),
            ("coupon", 3.0),
            ("nonprofit", 3.0),
        ],
    ),
    (
        Category::Technical,
        "crash",
        &[
            ("crash", 3.0),
            ("closes", 2.0),
            ("se cierra", 3.0),
            ("plant", 3.0),
            ("absturz", 3.0),
            ("sturzt", 3.0),
            ("freez", 2.0),
        ],
    ),
    (
        Category::Technical,
        "performance",
        &[
            ("slow", 3.0),
            ("lag", 3.0),
            ("latency", 3.0),
            ("takes forever", 3.0),
            ("lento", 3.0),
            ("lent ", 3.0),
            ("langsam", 3.0),
        ],
    ),
    (
        Category::Technical,
        "sync_issue",
        &[
            ("sync", 3.0),
            ("sincroniz", 3.0),
            ("synchronis", 3.0),
            ("not showing up on", 2.0),
        ],
    ),
    (
        Category::Technical,
        "api_error",
        &[
            ("api", 2.5),
            ("endpoint", 3.0),
            ("429", 3.0),
            ("401", 2.0),
            ("502", 2.0),
            ("rate limit", 3.0),
            ("webhook", 2.5),
        ],
    ),
    (
        Category::Technical,
        "integration_issue",
        &[
            ("integration", 3.0),
            ("slack", 2.5),
            ("salesforce", 2.5),
            ("zapier", 2.5),
            ("google drive", 2.5),
        ],
    ),
    (
        Category::Technical,
        "installation",
        &[
            ("install", 3.0),
            ("installer", 3.0),
            ("setup", 1.5),
            ("update failed", 2.0),
        ],
    ),
    (
        Category::Technical,
        "connectivity",
        &[
            ("connect", 2.0),
            ("wifi", 3.0),
            ("wi-fi", 3.0),
            ("pair", 3.0),
            ("bluetooth", 3.0),
            ("offline", 2.5),
            ("blinking", 2.0),
        ],
    ),
    (
        Category::Technical,
        "data_issue",
        &[
            ("lost", 2.5),
            ("missing", 2.5),
            ("disappeared", 3.0),
            ("import", 3.0),
            ("export", 3.0),
            ("csv", 2.0),
            ("deleted", 2.0),
            ("duplicate", 2.0),
        ],
    ),
    (
        Category::Technical,
        "bug",
        &[
            ("bug", 3.0),
            ("error", 1.0),
            ("broken", 1.5),
            ("wrong", 1.0),
            ("glitch", 3.0),
        ],
    ),
    (
        Category::Account,
        "password_reset",
        &[
            ("password", 3.0),
            ("reset", 2.0),
            ("contrasena", 3.0),
            ("mot de passe", 3.0),
            ("passwort", 3.0),
            ("senha", 3.0),
        ],
    ),
    (
        Category::Account,
        "two_factor",
        &[
            ("2fa", 3.5),
            ("two-factor", 3.5),
            ("two factor", 3.5),
            ("authenticator", 3.5),
            ("backup code", 3.5),
            ("verification code", 3.0),
            ("lost my phone", 3.0),
            ("new phone", 2.0),
        ],
    ),
    (
        Category::Account,
        "account_locked",
        &[
            ("locked", 3.0),
            ("lockout", 3.0),
            ("bloquead", 3.0),
            ("gesperrt", 3.0),
            ("bloque", 3.0),
            ("too many attempts", 3.0),
        ],
    ),
    (
        Category::Account,
        "security_concern",
        &[
            ("hacked", 3.5),
            ("compromised", 3.5),
            ("suspicious", 3.5),
            ("unauthorized", 3.0),
            ("someone", 1.5),
            ("without me", 2.5),
            ("didn't make", 2.0),
            ("token", 1.0),
        ],
    ),
    (
        Category::Account,
        "account_deletion",
        &[
            ("delete my account", 3.5),
            ("close my account", 3.5),
            ("deactivate", 3.0),
            ("gdpr", 3.0),
            ("erase", 2.5),
            ("remove my data", 3.0),
            ("delete", 1.5),
        ],
    ),
    (
        Category::Account,
        "profile_update",
        &[
            ("change my email", 3.0),
            ("change email", 3.0),
            ("update my email", 3.0),
            ("profile", 3.0),
            ("name", 1.0),
            ("owner", 2.0),
            ("ownership", 3.0),
            ("transfer", 2.0),
            ("admin", 1.5),
            ("role", 1.5),
            ("invite", 1.5),
        ],
    ),
    (
        Category::Account,
        "login_problem",
        &[
            ("log in", 3.0),
            ("login", 3.0),
            ("sign in", 3.0),
            ("logged out", 3.0),
            ("sso", 2.5),
            ("can't access", 2.0),
            ("iniciar sesion", 3.0),
            ("connecter", 2.5),
            ("anmelden", 3.0),
            ("accedere", 3.0),
        ],
    ),
    (
        Category::General,
        "shipping",
        &[
            ("shipping", 3.0),
            ("shipped", 3.0),
            ("delivery", 3.0),
            ("tracking", 3.0),
            ("arrive", 2.0),
            ("package", 2.0),
            ("envio", 3.0),
            ("livraison", 3.0),
            ("lieferung", 3.0),
            ("versand", 3.0),
            ("spedizione", 3.0),
            ("entrega", 3.0),
            ("colis", 3.0),
            ("customs", 2.5),
        ],
    ),
    (
        Category::General,
        "return",
        &[
            ("return", 3.0),
            ("send it back", 3.0),
            ("send back", 3.0),
            ("devol", 3.0),
            ("retour", 3.0),
            ("rucksend", 3.0),
            ("reso", 3.0),
            ("unopened", 2.0),
        ],
    ),
    (
        Category::General,
        "warranty",
        &[
            ("warranty", 3.5),
            ("garantia", 3.5),
            ("garantie", 3.5),
            ("defect", 2.5),
            ("dead", 1.5),
            ("replacement", 2.0),
        ],
    ),
    (
        Category::General,
        "feature_request",
        &[
            ("feature", 3.0),
            ("would be great", 3.0),
            ("would love", 2.5),
            ("please add", 3.0),
            ("it would be nice", 3.0),
            ("dark mode", 2.0),
            ("roadmap", 2.0),
            ("suggest", 2.5),
            ("wish", 2.0),
        ],
    ),
    (
        Category::General,
        "feedback",
        &[
            ("feedback", 3.0),
            ("thank", 2.0),
            ("love", 2.0),
            ("great job", 3.0),
            ("kudos", 3.0),
            ("happy", 1.5),
            ("disappointed", 2.0),
        ],
    ),
    (
        Category::General,
        "pre_sales",
        &[
            ("do you offer", 3.0),
            ("interested", 3.0),
            ("considering", 3.0),
            ("trial", 2.0),
            ("demo", 3.0),
            ("quote", 2.5),
            ("evaluat", 2.5),
            ("do you support", 2.5),
            ("before we buy", 3.0),
        ],
    ),
    (
        Category::General,
        "partnership",
        &[
            ("partner", 3.5),
            ("reseller", 3.5),
            ("affiliate", 3.5),
            ("collaborat", 2.5),
        ],
    ),
];

const HIGH: &[&str] = &[
    "urgent",
    "asap",
    "immediately",
    "emergency",
    "critical",
    "outage",
    "production down",
    "prod down",
    "production is down",
    "is down",
    "all users",
    "whole team",
    "entire team",
    "everyone",
    "data loss",
    "lost all",
    "all my",
    "deleted all",
    "hacked",
    "compromised",
    "breach",
    "unauthorized",
    "someone logged",
    "someone ordered",
    "without me",
    "fraud",
    "right now",
    "losing money",
    "losing customers",
    "dringend",
    "urgente",
    "urgence",
];

const LOW: &[&str] = &[
    "question",
    "wondering",
    "curious",
    "how do i",
    "how can i",
    "is it possible",
    "is there a way",
    "feature",
    "suggest",
    "feedback",
    "would be great",
    "would love",
    "would be nice",
    "just wanted",
    "thank",
    "kudos",
    "love ",
    "do you offer",
    "do you support",
    "interested",
    "considering",
    "info",
    "when will",
    "pregunta",
    "question",
    "frage",
    "domanda",
    "pergunta",
];

/// The lists above, compiled once.
struct Compiled {
    products: Vec<(&'static str, PhraseSet)>,
    issue_types: Vec<(Category, &'static str, PhraseSet)>,
    high: PhraseSet,
    low: PhraseSet,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| Compiled {
    products: PRODUCTS
        .iter()
        .map(|(name, phrases)| (*name, PhraseSet::new(phrases)))
        .collect(),
    issue_types: ISSUE_TYPES
        .iter()
        .map(|(category, name, phrases)| (*category, *name, PhraseSet::weighted(phrases)))
        .collect(),
    high: PhraseSet::new(HIGH),
    low: PhraseSet::new(LOW),
});

fn product(text: &str) -> Option<String> {
    COMPILED
        .products
        .iter()
        .find(|(_, phrases)| phrases.any(text))
        .map(|(name, _)| (*name).to_owned())
}

fn issue_type(text: &str, category: Category) -> Option<String> {
    COMPILED
        .issue_types
        .iter()
        .filter(|(c, _, _)| *c == category)
        .map(|(_, name, phrases)| (name, phrases.score(text)))
        .filter(|(_, s)| *s > 0.0)
        .fold(None, |best: Option<(&&str, f32)>, (name, s)| match best {
            Some((_, bs)) if bs >= s => best,
            _ => Some((name, s)),
        })
        .map(|(name, _)| (*name).to_owned())
}

fn urgency(text: &str, subject: &str, category: Category) -> Urgency {
    let shouting = subject.chars().filter(|c| c.is_alphabetic()).count() > 8
        && subject.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase);
    if shouting || COMPILED.high.any(text) {
        return Urgency::High;
    }
    if COMPILED.low.any(text) {
        return Urgency::Low;
    }
    match category {
        Category::General => Urgency::Low,
        _ => Urgency::Medium,
    }
}

/// Extracts the entities of a ticket already classified as `category`.
pub(crate) fn extract(subject: &str, body: &str, category: Category) -> Entities {
    let raw = format!("{subject}\n{body}");
    let text = normalize(&raw);
    Entities {
        order_id: order_id::find(&raw),
        product: product(&text),
        issue_type: issue_type(&text, category),
        urgency: urgency(&text, subject, category),
    }
}
